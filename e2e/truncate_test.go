package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestTruncatedBlobAtOnce: a cached file truncated in place (its
// directory unchanged, the blob watcher not yet heard from) makes the very
// next GET answer 409 avatarAssetMissing naming it. Before, a GET within a
// second of one that found the avatar whole trusted that check and
// answered 200 with the short file.
func TestTruncatedBlobAtOnce(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 48<<10, 16<<10)
	o := newOrigin(t, a)
	e := newEnv(t, o)
	e.writeConfigWith(storeConf{noHeal: true})
	p := e.Start()
	c := e.Client()
	got := e.mustLoad(c, "rohan")
	victim := got.Assets[0]
	dirSettled(t, filepath.Dir(victim.LocalPath))
	e.must(c, "GET", "/v1/avatars/rohan", nil, 200, nil)

	f, err := os.OpenFile(victim.LocalPath, os.O_WRONLY, 0) // 0444: as root, or after a chmod
	if os.IsPermission(err) {
		if err = os.Chmod(victim.LocalPath, 0o644); err == nil {
			f, err = os.OpenFile(victim.LocalPath, os.O_WRONLY, 0)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(victim.Size / 2); err != nil {
		t.Fatal(err)
	}
	f.Close()
	er := e.mustErr(c, "GET", "/v1/avatars/rohan", nil, 409, "avatarAssetMissing")
	if er.Asset != victim.Path {
		t.Errorf("error names %q, want %q", er.Asset, victim.Path)
	}
	checkFiles(t, a, e.mustLoad(c, "rohan"))
	p.Stop()
}

// dirSettled waits until dir's change time is 100ms in the past (by the
// file-time clock, which may lag the wall clock by a tick): a directory
// that changed just now would never have been trusted.
func dirSettled(t *testing.T, dir string) {
	t.Helper()
	waitFor(t, dir+" to settle", func() bool {
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		if time.Since(time.Unix(st.Ctim.Unix())) > 100*time.Millisecond {
			return true
		}
		time.Sleep(10 * time.Millisecond)
		return false
	})
}
