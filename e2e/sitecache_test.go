package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// TestSiteCacheConfig runs deploy/site-cache/nginx.conf as shipped (only
// paths, hosts and ports replaced; nginx -t first) between two devices of
// two tenants and a real `assetd origin` that requires app IDs and tokens,
// over TLS with a test CA that the devices trust through origin.ca_file.
// It checks what docs/fleet.md promises: the token and app ID reach the
// origin; a blob leaves the origin once per app ID and never across
// tenants; a manifest is never answered by the cache (each load asks the
// origin, conditionally, so a republish is seen at once); a Range of a
// cached blob is a cache hit; errors are not cached; no token is logged.
func TestSiteCacheConfig(t *testing.T) {
	dir := testkit.ShortDir(t)
	src, site := filepath.Join(dir, "src"), filepath.Join(dir, "site")
	model := filepath.Join(src, "kiosk", "model.bin")
	writeRandom(t, model, 256<<10)
	writeRandom(t, filepath.Join(src, "kiosk", "face.bin"), 8<<10)
	if err := os.WriteFile(filepath.Join(src, "kiosk", "VERSION"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	publish(t, src, site)

	ca := testkit.NewCA(t)
	cert, key := ca.Issue(t, "origin", "localhost")
	lists := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	originURL, olog := testkit.StartOriginCmdLog(t, site, waitLimit, "--tls-cert", cert, "--tls-key", key,
		"--log-level", "debug", "--app-ids", lists("apps", "alpha\nbeta\n"), "--tokens", lists("tokens", "tok-alpha\ntok-beta\n"))
	sc := testkit.StartSiteCache(t, ca, originURL, waitLimit)

	device := func(app, token string) *testkit.Env {
		e := testkit.NewEnv(t, waitLimit)
		e.Write(e.Token, token+"\n")
		e.WriteConfig(testkit.Config{OriginURL: sc.URL, AppID: app, MaxRetries: 2,
			Origin: "ca_file = \"" + ca.File + "\"\n"})
		p := e.Start()
		t.Cleanup(p.Stop)
		return e
	}
	alpha, beta := device("alpha", "tok-alpha"), device("beta", "tok-beta")

	modelSum := fileSum(t, model)
	blob := "/v1/blobs/sha256/" + modelSum
	// requests counts the origin's answers to path (a prefix) with status
	// (0: any).
	requests := func(path string, status int) int {
		n := 0
		for _, r := range testkit.OriginRequests(olog.String()) {
			if strings.HasPrefix(r.Path, path) && (status == 0 || r.Status == status) {
				n++
			}
		}
		return n
	}
	preload := func(e *testkit.Env) string {
		t.Helper()
		if out, errOut, code := e.CLI("preload", "kiosk"); code != 0 {
			t.Fatalf("preload: exit %d\n%s%s\nsite cache log:\n%s", code, out, errOut, readFile(t, sc.AccessLog))
		}
		var av apitype.Avatar
		if code, err := testkit.Do(e.Client(), "GET", "/v1/avatars/kiosk", nil, &av); code != 200 || err != nil {
			t.Fatalf("GET kiosk: %d %v", code, err)
		}
		for _, a := range av.Assets {
			if a.Path == "model.bin" {
				return fileSum(t, a.LocalPath)
			}
		}
		t.Fatalf("no model.bin in %+v", av)
		return ""
	}
	// expect waits until the origin has logged want requests to path
	// with status: it logs each once its answer is sent, which may be
	// after nginx has passed the answer on.
	expect := func(what, path string, status, want int) {
		t.Helper()
		deadline := time.Now().Add(waitLimit)
		for {
			got := requests(path, status)
			if got == want {
				return
			}
			if got > want || time.Now().After(deadline) {
				t.Errorf("%s: the origin answered %d times, want %d", what, got, want)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	check := func(when string, blobs, manifests, notModified int) {
		t.Helper()
		expect(when+": the model blob", blob, 200, blobs)
		expect(when+": manifest requests (one per load: never from the cache)", "/v1/avatars/kiosk/manifest", 0, manifests)
		expect(when+": manifest requests with 304", "/v1/avatars/kiosk/manifest", http.StatusNotModified, notModified)
	}

	if got := preload(alpha); got != modelSum {
		t.Fatalf("alpha holds %s, published %s", got, modelSum)
	}
	check("alpha's load", 1, 1, 0)
	if got := preload(beta); got != modelSum {
		t.Fatalf("beta holds %s, published %s", got, modelSum)
	}
	check("beta's load (another app ID: its own cache entry)", 2, 2, 0)
	preload(beta)
	check("beta's load again (its If-None-Match reaches the origin)", 2, 3, 1)

	// A resume's Range is served from the cache.
	get := func(app, token, rng string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", sc.URL+blob, nil)
		if app != "" {
			req.Header.Set("X-App-ID", app)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := sc.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	data, err := os.ReadFile(model)
	if err != nil {
		t.Fatal(err)
	}
	resp, body := get("alpha", "tok-alpha", "bytes=1000-")
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("X-Cache-Status") != "HIT" || !bytes.Equal(body, data[1000:]) {
		t.Errorf("Range of a cached blob: %d, X-Cache-Status %q, %d bytes; want 206 HIT with bytes 1000-",
			resp.StatusCode, resp.Header.Get("X-Cache-Status"), len(body))
	}
	// Another tenant never gets alpha's or beta's entry: the origin
	// refuses it, each time (an error is not kept).
	for range 2 {
		if resp, _ := get("gamma", "tok-alpha", ""); resp.StatusCode != http.StatusForbidden {
			t.Errorf("app gamma: %d, want the origin's 403", resp.StatusCode)
		}
	}
	expect("app gamma (errors are not cached)", blob, http.StatusForbidden, 2)
	// Within one app ID a cached blob is shared without the origin seeing
	// the token (docs/fleet.md says so).
	if resp, _ := get("alpha", "", ""); resp.StatusCode != http.StatusOK || resp.Header.Get("X-Cache-Status") != "HIT" {
		t.Errorf("alpha without a token: %d %q; docs/fleet.md says a cached blob is shared within the app ID",
			resp.StatusCode, resp.Header.Get("X-Cache-Status"))
	}
	check("the Range and the other tenant", 2, 3, 1)

	// A republish is seen by the next load: no stale manifest.
	writeRandom(t, model, 256<<10)
	publish(t, src, site)
	newSum := fileSum(t, model)
	blob = "/v1/blobs/sha256/" + newSum
	// A Range during the fill (a miss) is cut from the stream.
	if data, err = os.ReadFile(model); err != nil {
		t.Fatal(err)
	}
	resp, body = get("alpha", "tok-alpha", "bytes=5000-")
	if resp.StatusCode != http.StatusPartialContent || resp.Header.Get("X-Cache-Status") != "MISS" || !bytes.Equal(body, data[5000:]) {
		t.Errorf("Range of a blob not cached yet: %d, X-Cache-Status %q, %d bytes; want 206 MISS with bytes 5000-",
			resp.StatusCode, resp.Header.Get("X-Cache-Status"), len(body))
	}
	if got := preload(alpha); got != newSum {
		t.Fatalf("after the republish alpha holds %s, published %s", got, newSum)
	}
	check("alpha's load after the republish", 1, 4, 1)

	// The devices' /metrics tell the cache's hits from its misses by the
	// X-Cache-Status the shipped config sends: every blob answer carries
	// it. beta's files all came through a cold cache (its own key); alpha's
	// new model came from the cache the Range above had filled.
	cacheBytes := func(e *testkit.Env) (hit, miss, all int64) {
		t.Helper()
		text := metricsText(t, e.Client())
		return metricValue(t, text, `assetd_site_cache_bytes_total{result="hit"}`),
			metricValue(t, text, `assetd_site_cache_bytes_total{result="miss"}`),
			metricValue(t, text, `assetd_downloaded_bytes_total{source="origin"}`) + metricValue(t, text, `assetd_downloaded_bytes_total{source="mirror"}`)
	}
	if hit, miss, all := cacheBytes(beta); hit != 0 || miss != 264<<10 || all != miss {
		t.Errorf("beta's metrics: cache hit %d, miss %d of %d bytes; want 0 and %d of %d", hit, miss, all, 264<<10, 264<<10)
	}
	if hit, miss, all := cacheBytes(alpha); hit < 256<<10 || hit+miss != all {
		t.Errorf("alpha's metrics: cache hit %d, miss %d of %d bytes; want at least %d hit, every byte either", hit, miss, all, 256<<10)
	}

	if log := readFile(t, sc.AccessLog); strings.Contains(log, "tok-alpha") || strings.Contains(log, "tok-beta") || !strings.Contains(log, "cache=HIT") {
		t.Errorf("the site cache's log holds a token or no cache status:\n%s", log)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestFleetDocMatchesSiteCache: every nginx directive docs/fleet.md's
// Site cache section names (a `proxy_...` span, with its arguments when
// given) is in deploy/site-cache/nginx.conf, and so are the header and log
// format it names: the page cannot promise what the file no longer does.
func TestFleetDocMatchesSiteCache(t *testing.T) {
	doc := readFile(t, "../docs/fleet.md")
	const head = "\n## Site cache\n"
	i := strings.Index(doc, head)
	if i < 0 {
		t.Fatal("docs/fleet.md has no Site cache section")
	}
	section := doc[i+len(head):]
	if j := strings.Index(section, "\n## "); j >= 0 {
		section = section[:j]
	}
	conf := strings.Join(strings.Fields(readFile(t, testkit.SiteCacheConfFile())), " ")
	named := 0
	for k, span := range strings.Split(section, "`") {
		if k%2 == 0 {
			continue // outside backticks
		}
		if strings.HasPrefix(span, "proxy_") || span == "X-Cache-Status" || span == "assetd_cache" || span == "allow" || span == "deny" {
			named++
			if !strings.Contains(conf, strings.Join(strings.Fields(span), " ")) {
				t.Errorf("docs/fleet.md names `%s`, which deploy/site-cache/nginx.conf does not have", span)
			}
		}
	}
	if named < 6 {
		t.Errorf("docs/fleet.md's Site cache section names only %d of the file's directives", named)
	}
}

// TestCAFileReload: a device whose origin (here an `assetd origin` over
// TLS) has a certificate from a private CA fails to load, with a hint
// naming origin.ca_file, until origin.ca_file holds that CA; the bundle is
// read again at each reload, so a CA replaced at the same path applies
// with `assetd reload`.
func TestCAFileReload(t *testing.T) {
	dir := testkit.ShortDir(t)
	src, site := filepath.Join(dir, "src"), filepath.Join(dir, "site")
	writeRandom(t, filepath.Join(src, "kiosk", "model.bin"), 32<<10)
	if err := os.WriteFile(filepath.Join(src, "kiosk", "VERSION"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	publish(t, src, site)
	ca, other := testkit.NewCA(t), testkit.NewCA(t)
	cert, key := ca.Issue(t, "origin", "127.0.0.1")
	originURL := testkit.StartOriginCmd(t, site, waitLimit, "--tls-cert", cert, "--tls-key", key)

	e := testkit.NewEnv(t, waitLimit)
	e.WriteConfig(testkit.Config{OriginURL: originURL, MaxRetries: 1})
	p := e.Start()
	defer p.Stop()
	preload := func() (string, int) {
		out, errOut, code := e.CLI("preload", "kiosk")
		return out + errOut, code
	}
	if out, code := preload(); code == 0 || !strings.Contains(out, "origin.ca_file") {
		t.Fatalf("without origin.ca_file: exit %d, want a failure naming origin.ca_file\n%s", code, out)
	}

	bundle := filepath.Join(dir, "site-ca.pem")
	copyCA := func(from *testkit.CA) {
		t.Helper()
		e.Write(bundle, readFile(t, from.File))
	}
	copyCA(other)
	e.WriteConfig(testkit.Config{OriginURL: originURL, MaxRetries: 1, Origin: fmt.Sprintf("ca_file = %q\n", bundle)})
	if out, errOut, code := e.CLI("reload"); code != 0 {
		t.Fatalf("reload with ca_file: exit %d\n%s%s", code, out, errOut)
	}
	if out, code := preload(); code == 0 {
		t.Fatalf("with another CA in origin.ca_file: exit 0\n%s", out)
	}
	copyCA(ca) // the config file does not change
	if out, errOut, code := e.CLI("reload"); code != 0 {
		t.Fatalf("reload: exit %d\n%s%s", code, out, errOut)
	}
	if out, code := preload(); code != 0 {
		t.Fatalf("with the origin's CA in origin.ca_file after a reload: exit %d\n%s", code, out)
	}

	// A bundle that is not one is refused at its key; the daemon keeps
	// the configuration in force.
	e.Write(bundle, "not a certificate\n")
	if out, errOut, code := e.CLI("reload"); code != 2 || !strings.Contains(out+errOut, "origin.ca_file") {
		t.Errorf("reload with a bad bundle: exit %d, want 2 naming origin.ca_file\n%s%s", code, out, errOut)
	}
}

// TestSiteCacheDownFallsBackToTheOrigin: configured as docs/fleet.md
// recommends (the site cache as origin.url, the origin as a mirror), a
// device loads through the cache, and once the cache is gone, from the
// origin by itself.
func TestSiteCacheDownFallsBackToTheOrigin(t *testing.T) {
	dir := testkit.ShortDir(t)
	src, site := filepath.Join(dir, "src"), filepath.Join(dir, "site")
	for _, id := range []string{"kiosk", "robot"} {
		writeRandom(t, filepath.Join(src, id, "model.bin"), 32<<10)
		if err := os.WriteFile(filepath.Join(src, id, "VERSION"), []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	publish(t, src, site)
	ca := testkit.NewCA(t)
	cert, key := ca.Issue(t, "origin", "localhost", "127.0.0.1")
	originURL, olog := testkit.StartOriginCmdLog(t, site, waitLimit, "--tls-cert", cert, "--tls-key", key, "--log-level", "debug")
	sc := testkit.StartSiteCache(t, ca, originURL, waitLimit)

	e := testkit.NewEnv(t, waitLimit)
	e.WriteConfig(testkit.Config{OriginURL: sc.URL, MaxRetries: 1,
		Origin: fmt.Sprintf("mirrors = [%q]\nca_file = %q\n", originURL, ca.File)})
	p := e.Start()
	defer p.Stop()
	if out, errOut, code := e.CLI("preload", "kiosk"); code != 0 {
		t.Fatalf("preload through the cache: exit %d\n%s%s", code, out, errOut)
	}
	if log := readFile(t, sc.AccessLog); !strings.Contains(log, "/v1/avatars/kiosk/manifest") {
		t.Fatalf("the load did not go through the site cache:\n%s", log)
	}
	if err := syscall.Kill(sc.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := e.CLI("preload", "robot"); code != 0 {
		t.Fatalf("preload with the cache down: exit %d, want the mirror to serve it\n%s%s", code, out, errOut)
	}
	if !strings.Contains(olog.String(), "path=/v1/avatars/robot/manifest") {
		t.Errorf("the origin did not serve robot's manifest:\n%s", olog.String())
	}
}
