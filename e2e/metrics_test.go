package e2e

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assetd/assetd/internal/testkit"
)

// rulesDir holds the shipped Prometheus rules and their unit tests.
const rulesDir = "../deploy/prometheus"

// promtool finds promtool (Debian's prometheus package; `make tools`
// installs it), skipping the test without it, failing under
// ASSETD_REQUIRE_TOOLS=1.
func promtool(t *testing.T) string {
	t.Helper()
	return testkit.LookTool(t, "promtool", "prometheus")
}

// loopbackPort is a loopback TCP port free a moment ago.
func loopbackPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestMetricsListenScrapedByPromtool runs the real daemon with
// metrics.listen, an origin that is down and a mirror that serves (as a
// site cache's hits), and a
// preload list with one avatar the origin does not know. Its TCP /metrics
// must pass `promtool check metrics`, carry the fleet gauges with the
// values of this run (bytes by source and by cache result, failing by code, last refresh, disk
// above the reserve), serve nothing else, and name every metric that the
// shipped rules and their tests use.
func TestMetricsListenScrapedByPromtool(t *testing.T) {
	t.Parallel()
	tool := promtool(t)
	a := newAvatar(t, "rohan", 40<<10, 8<<10)
	// The mirror stands for a site cache that has every blob on its disk.
	mirror := testkit.UnstartedOrigin(a)
	mirror.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Cache-Status", "HIT")
		mirror.ServeHTTP(w, r)
	}))
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusBadGateway)
	}))
	t.Cleanup(down.Close)
	e := newEnv(t, mirror)
	addr := "127.0.0.1:" + strconv.Itoa(loopbackPort(t))
	e.Write(e.Config, e.ConfigText(testkit.Config{
		OriginURL:  down.URL,
		Origin:     "mirrors = [\"" + mirror.URL() + "\"]\n",
		AppID:      "e2e-app",
		MaxRetries: 1,
		Preload:    []string{"rohan", "ghost"},
	})+"\n[metrics]\nlisten = \""+addr+"\"\n")
	p := e.Start()
	p.WaitLog("serving metrics")

	c := &http.Client{Timeout: waitLimit}
	get := func(method, path string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+addr+path, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	var text string
	deadline := time.Now().Add(waitLimit)
	for {
		var code int
		code, text = get("GET", "/metrics")
		if code == 200 && strings.Contains(text, `assetd_preload_failing_avatars{code="avatarIDUnrecognized"} 1`) &&
			strings.Contains(text, "assetd_refresh_last_success_timestamp_seconds ") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the preload did not show in /metrics within %v:\n%s\nlog:\n%s", waitLimit, text, testkit.Tail(p.Stderr.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}

	cmd := exec.Command(tool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "" {
		t.Errorf("promtool check metrics: %v\n%s\non:\n%s", err, out, text)
	}

	size := a.Size()
	for _, want := range []string{
		`assetd_downloaded_bytes_total{source="mirror"} ` + strconv.FormatInt(size, 10) + "\n",
		`assetd_downloaded_bytes_total{source="origin"} 0` + "\n",
		`assetd_site_cache_bytes_total{result="hit"} ` + strconv.FormatInt(size, 10) + "\n",
		`assetd_site_cache_bytes_total{result="miss"} 0` + "\n",
		`assetd_avatars{state="ready"} 1` + "\n",
		`assetd_avatars{state="damaged"} 0` + "\n",
		"assetd_preload_avatars 2\n",
		"# TYPE assetd_disk_free_above_reserve_bytes gauge\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, text)
		}
	}
	ts := regexp.MustCompile(`(?m)^assetd_refresh_last_success_timestamp_seconds (\d+)$`).FindStringSubmatch(text)
	if ts == nil {
		t.Fatalf("no refresh timestamp:\n%s", text)
	}
	if at, _ := strconv.ParseInt(ts[1], 10, 64); time.Since(time.Unix(at, 0)) > time.Minute || time.Until(time.Unix(at, 0)) > time.Minute {
		t.Errorf("last refresh at %s, not about now", time.Unix(at, 0))
	}
	if strings.Contains(text, "rohan") || strings.Contains(text, "ghost") {
		t.Errorf("/metrics names an avatar:\n%s", text)
	}

	// Nothing else is served on the TCP listener: not the API.
	for _, path := range []string{"/", "/v1/health", "/v1/avatars", "/v1/avatars/rohan", "/v1/cache/stats"} {
		if code, _ := get("GET", path); code != http.StatusNotFound {
			t.Errorf("GET %s on metrics.listen: %d, want 404", path, code)
		}
	}
	if code, _ := get("POST", "/v1/reload"); code != http.StatusNotFound {
		t.Errorf("POST /v1/reload on metrics.listen: %d, want 404", code)
	}
	if code, _ := get("DELETE", "/metrics"); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE /metrics: %d, want 405", code)
	}

	// Every metric the rules and their tests name is in the real output.
	families := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (\S+) `).FindAllStringSubmatch(text, -1) {
		families[m[1]] = true
	}
	// So is every metric the docs name: the rules' tables and queries in
	// docs/fleet.md, the table of docs/operations.md.
	for _, f := range []struct{ path, section string }{
		{filepath.Join(rulesDir, "assetd-rules.yml"), ""},
		{filepath.Join(rulesDir, "assetd-rules.test.yml"), ""},
		{"../docs/fleet.md", "## Monitoring"},
		{"../docs/operations.md", "## Metrics"},
		{"../docs/api.md", "### `GET /metrics`"},
	} {
		for _, name := range metricNames(t, f.path, f.section) {
			if !families[name] {
				t.Errorf("%s uses %s, which the daemon's /metrics does not have", f.path, name)
			}
		}
	}

	c.CloseIdleConnections()
	p.Stop()
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts after the daemon stopped", addr)
	}
}

// metricNames are the assetd_ metric names a file mentions (in its
// expressions, series and text alike), within its section (a heading
// line, to the next heading of that level) when section is not "".
func metricNames(t *testing.T, path, section string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if section != "" {
		_, after, ok := strings.Cut(text, "\n"+section+"\n")
		if !ok {
			t.Fatalf("%s has no section %q", path, section)
		}
		level, _, _ := strings.Cut(section, " ")
		text, _, _ = strings.Cut(after, "\n"+level+" ")
	}
	seen := map[string]bool{}
	var names []string
	for _, n := range regexp.MustCompile(`\bassetd_[a-z0-9_]+`).FindAllString(text, -1) {
		if !seen[n] {
			seen[n] = true
			names = append(names, n)
		}
	}
	if len(names) < 4 {
		t.Fatalf("%s names only %v", path, names)
	}
	return names
}

// TestPrometheusRules: the shipped rules load (promtool check rules) and
// fire as their unit tests expect (promtool test rules).
func TestPrometheusRules(t *testing.T) {
	t.Parallel()
	tool := promtool(t)
	for _, args := range [][]string{
		{"check", "rules", "assetd-rules.yml"},
		{"test", "rules", "assetd-rules.test.yml"},
	} {
		cmd := exec.Command(tool, args...)
		cmd.Dir = rulesDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// metricsText is the socket's GET /metrics.
func metricsText(t *testing.T, c *http.Client) string {
	t.Helper()
	resp, err := c.Get("http://assetd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	return string(b)
}

// metricValue is the value of the sample series (a name and its labels,
// as written) in text, which must have it.
func metricValue(t *testing.T, text, series string) int64 {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("%s: %v", l, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /metrics:\n%s", series, text)
	return 0
}
