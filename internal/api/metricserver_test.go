package api_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
)

// serveMetrics runs ServeMetrics on a loopback port until the test ends
// and returns its base URL and a stop function that waits for it.
func serveMetrics(t *testing.T, srv *api.Server) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.ServeMetrics(ctx, ln) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeMetrics: %v", err)
		}
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

func TestMetricsListenerServesOnlyMetrics(t *testing.T) {
	fm := &apitest.Manager{}
	opts := api.Options{Metrics: func() api.Metrics {
		return api.Metrics{LoadsByResult: map[string]uint64{"ok": 3}, CacheEntries: 2, Stale: 1}
	}}
	ts := start(t, fm, opts)
	base, stop := serveMetrics(t, api.New(fm, opts))
	c := &http.Client{Timeout: 10 * time.Second}

	do := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}

	// One writer, two listeners: the TCP answer is the socket's.
	resp, body := do("GET", "/metrics")
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sock, err := ts.c.Metrics(testCtx(t))
	if err != nil || sock != body {
		t.Errorf("the socket's /metrics differs from the listener's (%v):\n%s\n---\n%s", err, sock, body)
	}
	if !strings.Contains(body, `assetd_avatars{state="stale"} 1`) {
		t.Errorf("metrics lack the stale gauge:\n%s", body)
	}

	resp, body = do("HEAD", "/metrics")
	if resp.StatusCode != 200 || body != "" || resp.ContentLength <= 0 {
		t.Errorf("HEAD /metrics: %d, length %d, body %q", resp.StatusCode, resp.ContentLength, body)
	}
	for _, p := range []string{"/", "/metrics/", "/v1/health", "/v1/avatars", "/v1/cache/stats", "/debug/pprof/", "/Metrics"} {
		if resp, _ := do("GET", p); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, resp.StatusCode)
		}
	}
	for _, m := range []string{"POST", "PUT", "DELETE", "OPTIONS"} {
		resp, _ := do(m, "/metrics")
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /metrics: %d Allow %q, want 405 GET, HEAD", m, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	if resp, _ := do("POST", "/v1/reload"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /v1/reload: %d, want 404", resp.StatusCode)
	}

	// Stopping closes the listener.
	c.CloseIdleConnections()
	stop()
	if conn, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "http://"), time.Second); err == nil {
		conn.Close()
		t.Error("the metrics listener still accepts after its context ended")
	}
}

// TestMetricsBoundedLabels feeds codes from outside the taxonomy (any
// string a future bug or a hostile origin might put there): the output
// keeps to the fixed label values, so the series count is bounded.
func TestMetricsBoundedLabels(t *testing.T) {
	loads := map[string]uint64{"ok": 1, "failedToFetchAvatarMetadata": 2}
	failing := map[string]int{"sessionTokenInvalid": 1}
	for i := range 500 {
		loads["avatar-"+strconv.Itoa(i)] = 1
		failing["x\"y\n"+strconv.Itoa(i)] = 1
	}
	out := string(api.AppendMetrics(nil, api.Metrics{LoadsByResult: loads, PreloadFailing: failing}))
	known := map[string]bool{"other": true}
	for _, info := range errcode.Table() {
		known[string(info.Code)] = true
	}
	for _, c := range []errcode.Code{errcode.Cancelled, errcode.BadRequest, errcode.NotFound, errcode.MethodNotAllowed, errcode.Forbidden, errcode.PayloadTooLarge, errcode.Internal, errcode.DaemonNotRunning} {
		known[string(c)] = true
	}
	fixed := map[string]map[string]bool{
		"code":    known,
		"result":  {"ok": true, "failed": true, "hit": true, "miss": true},
		"state":   {"ready": true, "stale": true, "damaged": true},
		"source":  {"origin": true, "mirror": true},
		"reason":  {"metered": true, "outside_window": true},
		"version": nil, // one value: the build's
	}
	label := regexp.MustCompile(`([a-z_]+)="((?:[^"\\]|\\.)*)"`)
	samples := 0
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		samples++
		for _, m := range label.FindAllStringSubmatch(l, -1) {
			set, ok := fixed[m[1]]
			if !ok {
				t.Errorf("label %s is not one of the fixed set: %s", m[1], l)
			} else if set != nil && !set[m[2]] {
				t.Errorf("label %s=%q is not a fixed value: %s", m[1], m[2], l)
			}
		}
	}
	if samples > 40 {
		t.Errorf("%d samples for 1000 distinct codes; the output is not bounded:\n%s", samples, out)
	}
	for _, want := range []string{
		`assetd_loads_total{result="failed",code="other"} 500`,
		`assetd_preload_failing_avatars{code="other"} 500`,
		`assetd_preload_failing_avatars{code="sessionTokenInvalid"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("metrics lack %q:\n%s", want, out)
		}
	}
}

// TestMetricsListenerCapsConnections: past MaxMetricsConnections open at
// once, a connection is closed at once; when one closes, scrapes work
// again.
func TestMetricsListenerCapsConnections(t *testing.T) {
	opts := api.Options{Metrics: func() api.Metrics { return api.Metrics{} }}
	base, _ := serveMetrics(t, api.New(&apitest.Manager{}, opts))
	addr := strings.TrimPrefix(base, "http://")
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	scrape := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	for range api.MaxMetricsConnections {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		if err := scrape(c); err != nil { // accepted: the server has it
			t.Fatalf("scrape %d: %v", len(held), err)
		}
	}
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := scrape(over); err == nil {
		t.Errorf("connection %d was served past the cap of %d", api.MaxMetricsConnections+1, api.MaxMetricsConnections)
	}
	over.Close()
	held[0].Close()
	held = held[1:]
	// The freed slot is taken again (once the close reaches the server).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		err = scrape(c)
		if err == nil {
			held = append(held, c)
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("no scrape after a connection closed: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
