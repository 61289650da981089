package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/assetd/assetd/internal/testkit"
)

// TestDaemonLogAtInfo reads the real daemon's log at level info: the
// serving line names the origin; completed loads (from the origin, then
// from the cache), pins, removals, imports and heals are logged; a cancel
// of a load with several downloads in flight logs one info line and no
// warning; no line repeats a key.
func TestDaemonLogAtInfo(t *testing.T) {
	e := testkit.NewEnv(t, waitLimit)
	rohan := testkit.RandomAvatar(t, "rohan", 96<<10, 64<<10)
	maya := testkit.RandomAvatar(t, "maya", 256<<10, 256<<10, 256<<10, 256<<10)
	o := testkit.NewOrigin(t, rohan, maya)
	e.WriteConfig(testkit.Config{OriginURL: o.URL(), Level: "info"})
	p := e.Start() // the test's cleanup kills it after a failure

	cli := func(args ...string) {
		t.Helper()
		if out, errOut, code := e.CLI(args...); code != 0 {
			t.Fatalf("assetd %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
	}
	cli("preload", "rohan")
	cli("preload", "rohan")
	cli("pin", "rohan")
	cli("unpin", "rohan")

	// Heal: a cached file deleted, found by verify, fetched again.
	blob := filepath.Join(e.State, "blobs", "sha256", rohan.Assets[0].SHA256)
	if err := os.Remove(blob); err != nil {
		t.Fatal(err)
	}
	e.CLI("verify", "rohan") // exits 1: damaged
	p.WaitLog("msg=healed")

	// A cancel of a load with four downloads held mid-way.
	var holds []*testkit.Hold
	for _, a := range maya.Assets {
		holds = append(holds, o.HoldBlob(a.SHA256, 32<<10))
	}
	c := e.Client()
	defer c.CloseIdleConnections()
	if code, err := testkit.Do(c, "POST", "/v1/avatars/maya/load?wait=false", nil, nil); err != nil || code != 202 {
		t.Fatalf("load maya: %d %v", code, err)
	}
	for _, h := range holds {
		<-h.Sent
	}
	cli("cancel", "maya")
	p.WaitLog(`msg="load cancelled" component=manager avatar=maya`)
	for _, h := range holds {
		h.Free()
	}

	dir := filepath.Join(e.Dir, "kiosk")
	writeRandom(t, filepath.Join(dir, "model.bin"), 10<<10)
	cli("import", "kiosk", dir)
	cli("rm", "rohan")
	p.Stop()

	log := p.Stderr.String()
	t.Logf("the daemon's log:\n%s", log)
	for _, re := range []string{
		`level=INFO msg=serving .*origin=` + regexp.QuoteMeta(o.URL()) + ` `,
		`level=INFO msg=loaded component=manager avatar=rohan version=1 bytes=163840 downloaded=163840 took=\S+ from=origin`,
		`level=INFO msg=loaded component=manager avatar=rohan version=1 bytes=163840 downloaded=0 took=\S+ from=cache`,
		`level=INFO msg=pinned component=manager avatar=rohan`,
		`level=INFO msg=unpinned component=manager avatar=rohan`,
		`level=INFO msg="healing: fetching the damaged files again" component=manager avatar=rohan`,
		`level=INFO msg=healed component=manager avatar=rohan version=1 bytes=163840 downloaded=98304 took=\S+ from=origin`,
		`level=INFO msg="load cancelled" component=manager avatar=maya`,
		`level=INFO msg=imported component=manager avatar=kiosk `,
		`level=INFO msg=removed component=manager avatar=rohan`,
	} {
		if !regexp.MustCompile(`(?m)` + re).MatchString(log) {
			t.Errorf("no log line matching %s", re)
		}
	}
	if n := strings.Count(log, "maya"); strings.Count(log, `avatar=maya`) != n {
		t.Errorf("maya's cancel logged more than its own lines")
	}
	quoted := regexp.MustCompile(`"(\\.|[^"\\])*"`)
	key := regexp.MustCompile(`(?:^| )([A-Za-z_][\w.]*)=`)
	for l := range strings.Lines(log) {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "maya") {
			t.Errorf("a cancel logged a warning: %s", l)
		}
		seen := map[string]bool{}
		for _, m := range key.FindAllStringSubmatch(quoted.ReplaceAllString(l, `""`), -1) {
			if seen[m[1]] {
				t.Errorf("key %s twice: %s", m[1], l)
			}
			seen[m[1]] = true
		}
	}
}
