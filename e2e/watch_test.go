package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/assetd/assetd/apitype"
)

// TestTokenFileRotation: a rewritten token file is used from the next
// request, and the load that failed on the old token is retried by itself.
func TestTokenFileRotation(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 32<<10)
	o := newOrigin(t, a)
	o.SetToken("e2e-rotated-token-2")
	e := newEnv(t, o)
	e.Write(e.Token, "e2e-stale-token-1\n")
	p := e.Start()
	c := e.Client()

	evs, err := e.load(c, "rohan")
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Error == nil || last.Error.Code != "sessionTokenExpired" {
		t.Fatalf("load with the stale token ended with %+v", last)
	}
	e.Write(e.Token, "e2e-rotated-token-2\n")
	waitFor(t, "the failed load to be retried with the new token", func() bool {
		code, _ := e.do(c, "GET", "/v1/avatars/rohan", nil, nil)
		return code == 200
	})
	checkFiles(t, a, e.mustLoad(c, "rohan"))
	p.Stop()
	if strings.Contains(p.Stderr.String(), "e2e-rotated-token-2") || strings.Contains(p.Stderr.String(), "e2e-stale-token-1") {
		t.Errorf("the log shows a token:\n%s", p.Stderr.String())
	}
}

// TestConfigFileEdit: an edited config file applies without a signal.
func TestConfigFileEdit(t *testing.T) {
	t.Parallel()
	rohan := newAvatar(t, "rohan", 32<<10)
	aria := newAvatar(t, "aria", 32<<10)
	o1 := newOrigin(t, rohan)
	o2 := newOrigin(t, aria)
	e := newEnv(t, o1)
	p := e.Start()
	c := e.Client()
	checkFiles(t, rohan, e.mustLoad(c, "rohan"))
	e.origin = o2
	e.writeConfig("")
	p.WaitLog("configuration reloaded")
	checkFiles(t, aria, e.mustLoad(c, "aria"))
	p.Stop()
}

// TestDeletedBlobHeals: a cached file deleted or rewritten behind the
// daemon's back marks its avatar damaged and, with self_heal, is fetched
// again; the other files are not.
func TestDeletedBlobHeals(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 64<<10, 16<<10)
	o := newOrigin(t, a)
	e := newEnv(t, o)
	p := e.Start()
	c := e.Client()
	got := e.mustLoad(c, "rohan")
	victim := got.Assets[0]
	if err := os.Remove(victim.LocalPath); err != nil {
		t.Fatal(err)
	}
	if filepath.Base(victim.LocalPath) != victim.SHA256 {
		t.Logf("local path %s is not named by its digest", victim.LocalPath)
	}
	waitFor(t, "the deleted file to be fetched again", func() bool {
		return o.BlobGets(victim.SHA256) >= 2
	})
	waitFor(t, "the avatar to be whole again", func() bool {
		code, _ := e.do(c, "GET", "/v1/avatars/rohan", nil, nil)
		_, err := os.Stat(victim.LocalPath)
		return code == 200 && err == nil
	})
	checkFiles(t, a, e.mustLoad(c, "rohan"))
	if n := o.BlobGets(victim.SHA256); n != 2 {
		t.Errorf("the deleted file was downloaded %d times in all, want twice", n)
	}

	// A file rewritten in place with other bytes of the same size.
	other := got.Assets[1]
	if n := o.BlobGets(other.SHA256); n != 1 {
		t.Errorf("the intact file was downloaded %d times, want once", n)
	}
	if err := os.Chmod(other.LocalPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(other.LocalPath, make([]byte, other.Size), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the rewritten file to be fetched again", func() bool {
		return o.BlobGets(other.SHA256) >= 2
	})
	waitFor(t, "the avatar to be whole again", func() bool {
		var av apitype.Avatar
		code, _ := e.do(c, "GET", "/v1/avatars/rohan", nil, &av)
		return code == 200 && av.State == apitype.StateReady
	})
	checkFiles(t, a, e.mustLoad(c, "rohan"))
	p.Stop()
}

// TestPreload: [preload] avatars are loaded at start and pinned; a reload
// that adds one loads it, one that drops one unpins it.
func TestPreload(t *testing.T) {
	t.Parallel()
	rohan := newAvatar(t, "rohan", 32<<10)
	mei := newAvatar(t, "mei", 32<<10)
	o := newOrigin(t, rohan, mei)
	e := newEnv(t, o)
	e.preload = []string{"rohan"}
	e.writeConfig("")
	p := e.Start()
	c := e.Client()
	pinned := func(id string, want bool) func() bool {
		return func() bool {
			var av apitype.Avatar
			code, _ := e.do(c, "GET", "/v1/avatars/"+id, nil, &av)
			return code == 200 && av.Pinned == want
		}
	}
	waitFor(t, "rohan preloaded and pinned", pinned("rohan", true))

	e.preload = []string{"mei"}
	e.writeConfig("")
	p.Signal(syscall.SIGHUP)
	waitFor(t, "mei preloaded and pinned", pinned("mei", true))
	waitFor(t, "rohan unpinned", pinned("rohan", false))
	p.Stop()
}
