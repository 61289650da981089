package e2e

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// TestPublishServeRepublish: `assetd publish` writes an origin tree,
// `assetd origin` serves it, the daemon loads from it; republished with one
// file changed, the next load downloads that file's bytes and nothing else.
func TestPublishServeRepublish(t *testing.T) {
	e := testkit.NewEnv(t, waitLimit)
	src := filepath.Join(e.Dir, "src")
	site := filepath.Join(e.Dir, "site")
	files := map[string]int{"model.splat": 300 << 10, "anim/idle.bin": 100 << 10, "anim/talk.bin": 120 << 10, "texture.bin": 80 << 10, "meta.json": 2 << 10}
	for p, n := range files {
		writeRandom(t, filepath.Join(src, "kiosk", p), n)
	}
	e.Write(filepath.Join(src, "kiosk", "VERSION"), "1\n")
	publish(t, src, site)

	url := testkit.StartOriginCmd(t, site, waitLimit)
	e.WriteConfig(testkit.Config{OriginURL: url})
	p := e.Start()
	defer p.Stop()
	c := e.Client()
	defer c.CloseIdleConnections()

	if out, errOut, code := e.CLI("preload", "kiosk"); code != 0 {
		t.Fatalf("preload: exit %d\n%s%s", code, out, errOut)
	}
	total := 0
	for _, n := range files {
		total += n
	}
	if got := downloadedBytes(t, c); got != int64(total) {
		t.Fatalf("first load downloaded %d bytes, want %d", got, total)
	}

	changed := filepath.Join(src, "kiosk", "anim", "talk.bin")
	writeRandom(t, changed, files["anim/talk.bin"])
	e.Write(filepath.Join(src, "kiosk", "VERSION"), "2\n")
	if out := publish(t, src, site); !strings.Contains(out, "1 blob added") {
		t.Errorf("republish did not add exactly one blob:\n%s", out)
	}
	if out, errOut, code := e.CLI("preload", "kiosk"); code != 0 {
		t.Fatalf("second preload: exit %d\n%s%s", code, out, errOut)
	}
	if got := downloadedBytes(t, c); got != int64(total+files["anim/talk.bin"]) {
		t.Errorf("after the republish the daemon downloaded %d bytes in all, want %d + the changed file's %d",
			got, total, files["anim/talk.bin"])
	}

	var av apitype.Avatar
	if code, err := testkit.Do(c, "GET", "/v1/avatars/kiosk", nil, &av); code != 200 || err != nil {
		t.Fatalf("GET kiosk: %d %v", code, err)
	}
	if av.Version != "2" || len(av.Assets) != len(files) {
		t.Fatalf("cached kiosk is version %q with %d assets", av.Version, len(av.Assets))
	}
	for _, a := range av.Assets {
		if got, want := fileSum(t, a.LocalPath), fileSum(t, filepath.Join(src, "kiosk", a.Path)); got != want {
			t.Errorf("%s: cached sha256 %s, published %s", a.Path, got, want)
		}
	}
}

func publish(t *testing.T, src, out string) string {
	t.Helper()
	b, err := testkit.Command("publish", src, out).CombinedOutput()
	if err != nil {
		t.Fatalf("assetd publish: %v\n%s", err, b)
	}
	return string(b)
}

func writeRandom(t *testing.T, path string, n int) {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// downloadedBytes reads assetd_downloaded_bytes_total from /metrics, the
// sum of its sources.
func downloadedBytes(t *testing.T, c *http.Client) int64 {
	t.Helper()
	resp, err := c.Get("http://assetd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var sum int64
	found := false
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "assetd_downloaded_bytes_total{"); ok {
			_, v, _ = strings.Cut(v, "} ")
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			sum += int64(n)
			found = true
		}
	}
	if !found {
		t.Fatal("no assetd_downloaded_bytes_total in /metrics")
	}
	return sum
}
