package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// TestLeftoversShownAndCollected: a load cancelled halfway leaves a
// partial download and a file no avatar uses; `assetd stats` and
// `assetd size` show them, and `assetd gc --keep 0` removes them, from
// disk too.
func TestLeftoversShownAndCollected(t *testing.T) {
	e := testkit.NewEnv(t, waitLimit)
	rohan := testkit.RandomAvatar(t, "rohan", 512<<10, 64<<10)
	o := testkit.NewOrigin(t, rohan)
	big := rohan.Assets[0].SHA256
	hold := o.HoldBlob(big, 128<<10)
	e.WriteConfig(testkit.Config{OriginURL: o.URL()})
	p := e.Start()
	defer p.Stop()
	c := e.Client()
	defer c.CloseIdleConnections()

	if code, err := testkit.Do(c, "POST", "/v1/avatars/rohan/load?wait=false", nil, nil); err != nil || code != 202 {
		t.Fatalf("load: %d %v", code, err)
	}
	<-hold.Sent
	stats := func() apitype.Stats {
		var st apitype.Stats
		if _, err := testkit.Do(c, "GET", "/v1/cache/stats", nil, &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	// The small file committed, the big one partly written.
	deadline := time.Now().Add(waitLimit)
	for st := stats(); st.UnusedBlobs != 1 || st.PartialBytes == 0; st = stats() {
		if time.Now().After(deadline) {
			t.Fatalf("no unused blob and partial download while loading: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, errOut, code := e.CLI("cancel", "rohan"); code != 0 {
		t.Fatalf("cancel: exit %d\n%s%s", code, out, errOut)
	}
	hold.Free()

	out, _, code := e.CLI("stats")
	t.Logf("stats after the cancel:\n%s", out)
	if code != 0 ||
		!regexp.MustCompile(`(?m)^unused +64\.0 KiB in 1 file no avatar uses \(gc removes them\)$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^partial +[0-9.]+ KiB in 1 download kept for resume \(gc removes them\)$`).MatchString(out) {
		t.Errorf("stats does not show the leftovers: exit %d\n%s", code, out)
	}
	st := stats()
	out, _, _ = e.CLI("size", "--bytes")
	if want := st.TotalSize + st.PartialBytes; out != strconv.FormatInt(want, 10)+"\n" {
		t.Errorf("size --bytes %q, want %d: the files and the partial downloads", out, want)
	}

	if out, errOut, code := e.CLI("gc", "--keep", "0"); code != 0 {
		t.Fatalf("gc: exit %d\n%s%s", code, out, errOut)
	}
	if st := stats(); st.UnusedBlobs+st.Partials != 0 || st.UnusedBytes+st.PartialBytes+st.TotalSize != 0 {
		t.Errorf("after gc --keep 0: %+v", st)
	}
	out, _, _ = e.CLI("stats")
	if !regexp.MustCompile(`(?m)^unused +none$`).MatchString(out) || !regexp.MustCompile(`(?m)^partial +none$`).MatchString(out) {
		t.Errorf("stats after gc:\n%s", out)
	}
	for _, dir := range []string{"ingest", "blobs/sha256"} {
		ents, err := os.ReadDir(filepath.Join(e.State, dir))
		if err != nil || len(ents) != 0 {
			t.Errorf("%s after gc --keep 0: %v %v", dir, ents, err)
		}
	}
	if l := p.LogLine("removed partial downloads and unused files"); l == "" {
		t.Error("gc's sweep is not logged")
	}

	// rm --all sweeps as well.
	hold = o.HoldBlob(big, 128<<10)
	if code, err := testkit.Do(c, "POST", "/v1/avatars/rohan/load?wait=false", nil, nil); err != nil || code != 202 {
		t.Fatalf("load: %d %v", code, err)
	}
	<-hold.Sent
	deadline = time.Now().Add(waitLimit)
	for st := stats(); st.PartialBytes == 0; st = stats() {
		if time.Now().After(deadline) {
			t.Fatalf("no partial download while loading: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out, errOut, code := e.CLI("rm", "--all"); code != 0 {
		t.Fatalf("rm --all: exit %d\n%s%s", code, out, errOut)
	}
	hold.Free()
	if st := stats(); st.Partials+st.UnusedBlobs != 0 || st.TotalSize != 0 {
		t.Errorf("after rm --all: %+v", st)
	}
}
