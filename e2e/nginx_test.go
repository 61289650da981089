package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// TestRepublishBehindNginx: an origin tree from `assetd publish` served by
// nginx (the docs' server block), preloaded, republished with one file
// changed within the same second, preloaded again: the daemon has the new
// file. nginx's validators are the manifest's mtime in seconds and its
// size (ETag "%x-%x", Last-Modified), and the new manifest has the old
// size, so publish must move the mtime past the old one's second, or
// nginx answers 304 to the daemon's revalidation forever.
func TestRepublishBehindNginx(t *testing.T) {
	e := testkit.NewEnv(t, waitLimit)
	src := filepath.Join(e.Dir, "src")
	site := filepath.Join(e.Dir, "site")
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	url := testkit.StartNginx(t, site, waitLimit)
	e.WriteConfig(testkit.Config{OriginURL: url})
	p := e.Start()
	defer p.Stop()
	c := e.Client()
	defer c.CloseIdleConnections()

	sum := func(id string) string {
		t.Helper()
		var av apitype.Avatar
		if code, err := testkit.Do(c, "GET", "/v1/avatars/"+id, nil, &av); code != 200 || err != nil || len(av.Assets) != 1 {
			t.Fatalf("GET %s: %d %v %+v", id, code, err, av)
		}
		return fileSum(t, av.Assets[0].LocalPath)
	}
	preload := func(id string) {
		t.Helper()
		if out, errOut, code := e.CLI("preload", id); code != 0 {
			t.Fatalf("preload %s: exit %d\n%s%s", id, code, out, errOut)
		}
	}
	// The fault needs the republish in the first publish's second: start
	// each round at a second's start, and try again with a new avatar when
	// the machine was too slow for that.
	for round := range 5 {
		id := fmt.Sprintf("kiosk%d", round)
		model := filepath.Join(src, id, "model.bin")
		time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
		start := time.Now()
		writeRandom(t, model, 64<<10)
		e.Write(filepath.Join(src, id, "VERSION"), "1\n")
		publish(t, src, site)
		preload(id)
		if got, want := sum(id), fileSum(t, model); got != want {
			t.Fatalf("%s after the first preload: sha256 %s, published %s", id, got, want)
		}
		writeRandom(t, model, 64<<10) // same size: the manifest keeps its size
		publish(t, src, site)
		end := time.Now()
		preload(id)
		if got, want := sum(id), fileSum(t, model); got != want {
			t.Fatalf("%s republished at %s (first publish at %s): the daemon still has sha256 %s, published %s",
				id, end.Format(time.StampMilli), start.Format(time.StampMilli), got, want)
		}
		if start.Unix() == end.Unix() {
			return
		}
		t.Logf("round %d: the republish was %v after the first publish, in another second; again", round, end.Sub(start))
	}
	t.Log("no round republished within one second: the fault was not exercised")
}
