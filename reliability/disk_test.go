package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/testkit"
)

// TestDiskFull runs the daemon on a 12 MiB tmpfs and fills the disk while
// an avatar downloads: the load fails with insufficientStorage (not
// retried), the cached avatar stays intact, the daemon restarts on the
// full disk and serves it, and once space is back the load completes.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		diskTable.add(t, "a full disk", "skipped: needs root to mount a tmpfs")
		t.Skip("needs root to mount a small tmpfs")
	}
	small := newAvatar("small", 11, 3<<20)
	big := newAvatar("big", 12, 4<<20)
	o := newBinOrigin(t, small, big)
	o.Chunk = 64 << 10
	o.SetDelay(20 * time.Millisecond)
	e := newEnv(t, o.Srv.URL)
	disk := filepath.Join(e.Dir, "disk")
	if err := os.Mkdir(disk, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=12m,mode=0700", "tmpfs", disk).CombinedOutput(); err != nil {
		diskTable.add(t, "a full disk", "skipped: mount failed")
		t.Skipf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(disk, syscall.MNT_DETACH) })
	e.State = filepath.Join(disk, "store")
	e.writeConfig()
	p := e.Start()
	c := e.Client()
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()

	if ev, err := e.load(ctx, c, "small"); err != nil || ev.Type != apitype.EventCompleted {
		t.Fatalf("load small: %v %+v", err, ev.Error)
	}

	// Fill the disk once big's download is under way.
	type result struct {
		ev  apitype.Event
		err error
	}
	done := make(chan result, 1)
	go func() {
		ev, err := e.load(ctx, c, "big")
		done <- result{ev, err}
	}()
	partial := filepath.Join(e.State, "ingest", big.Assets[0].SHA256)
	deadline := time.Now().Add(waitLimit)
	for {
		if fi, err := os.Stat(partial); err == nil && fi.Size() > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no partial download of big within %v; log:\n%s", waitLimit, testkit.Tail(p.Stderr.String()))
		}
		time.Sleep(5 * time.Millisecond)
	}
	filler := filepath.Join(disk, "filler")
	filled := testkit.Fill(t, filler, 0)
	r := <-done
	if r.err != nil {
		t.Fatalf("load big: %v", r.err)
	}
	if r.ev.Error == nil || r.ev.Error.Code != errcode.FailedToDownloadAvatarAssets || r.ev.Error.Reason != errcode.ReasonInsufficientStorage || r.ev.Error.Transient {
		t.Fatalf("load big on a full disk ended %+v %+v, want failedToDownloadAvatarAssets/insufficientStorage, not transient", r.ev, r.ev.Error)
	}
	first := fmt.Sprintf("`%s` reason `%s`, transient=%v", r.ev.Error.Code, r.ev.Error.Reason, r.ev.Error.Transient)
	e.mustReady(t, small)

	// A restart on the full disk.
	p.Kill()
	p = e.Start()
	e.mustReady(t, small)
	if out, errOut, code := e.CLI("verify", "small"); code != 0 {
		t.Errorf("verify on the full disk: exit %d: %s%s", code, out, errOut)
	}

	// Space comes back: big loads.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	ev, err := e.load(ctx, c, "big")
	if err != nil || ev.Type != apitype.EventCompleted || ev.Avatar == nil {
		t.Fatalf("load big with space back: %v %+v; log:\n%s", err, ev.Error, testkit.Tail(p.Stderr.String()))
	}
	checkFiles(t, big, ev.Avatar)
	if out, errOut, code := e.CLI("verify"); code != 0 {
		t.Errorf("verify: exit %d: %s%s", code, out, errOut)
	}
	p.Stop()
	diskTable.add(t, fmt.Sprintf("store.dir on a 12 MiB tmpfs; a 3 MiB avatar cached; while a 4 MiB one downloads a file fills the disk (%.1f MiB written until ENOSPC); SIGKILL and restart on the full disk; the file removed", float64(filled)/(1<<20)),
		fmt.Sprintf("the download ends %s; the cached avatar stays ready and verifies, also after the restart on the full disk; with space back the 4 MiB avatar loads with the origin's bytes", first))
}

// mustReady requires GET /v1/avatars/{id} to answer the ready avatar with
// the origin's bytes.
func (e *env) mustReady(t *testing.T, a *avatar) {
	t.Helper()
	c := e.Client()
	defer c.CloseIdleConnections()
	var av apitype.Avatar
	if err := expect200(testkit.Do(c, "GET", "/v1/avatars/"+a.ID, nil, &av)); err != nil {
		t.Fatalf("get %s: %v", a.ID, err)
	}
	if av.State != apitype.StateReady {
		t.Fatalf("%s is %s", a.ID, av.State)
	}
	checkFiles(t, a, &av)
}
