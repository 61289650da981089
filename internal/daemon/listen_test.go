package daemon

import (
	"context"
	"errors"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// shortDir is a temp dir short enough for a Unix socket path (~107 bytes).
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ad")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func TestListenCreatesSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "run", "a.sock")
	ln, err := listen(context.Background(), SocketOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want socket 0660", fi.Mode())
	}
	di, err := os.Stat(filepath.Dir(path))
	if err != nil || di.Mode().Perm()&^0o755 != 0 {
		t.Errorf("socket dir: %v, %v; want at most 0755", di.Mode(), err)
	}
	if ln.inherited {
		t.Error("a created socket is reported as inherited")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want it removed", err)
	}
	// Until release, the lock keeps a successor out.
	if _, err := listen(context.Background(), SocketOptions{Path: path}); !errors.Is(err, ErrInUse) {
		t.Errorf("listen before release: %v, want ErrInUse", err)
	}
	ln.release()
	again, err := listen(context.Background(), SocketOptions{Path: path})
	if err != nil {
		t.Fatalf("listen after release: %v", err)
	}
	again.release()
}

func TestListenMode(t *testing.T) {
	path := filepath.Join(shortDir(t), "a.sock")
	ln, err := listen(context.Background(), SocketOptions{Path: path, Mode: 0o600})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.release()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestListenGroup(t *testing.T) {
	g, err := user.LookupGroupId(strconv.Itoa(os.Getgid()))
	if err != nil {
		t.Skipf("no name for our gid: %v", err)
	}
	dir := shortDir(t)
	for _, name := range []string{g.Name, g.Gid} {
		ln, err := listen(context.Background(), SocketOptions{Path: filepath.Join(dir, "a.sock"), Group: name})
		if err != nil {
			t.Fatalf("group %q: %v", name, err)
		}
		ln.release()
	}
	_, err = listen(context.Background(), SocketOptions{Path: filepath.Join(dir, "b.sock"), Group: "no-such-group-assetd"})
	if err == nil || !strings.Contains(err.Error(), "no-such-group-assetd") {
		t.Errorf("unknown group: err = %v, want one naming the group", err)
	}
	if _, serr := os.Lstat(filepath.Join(dir, "b.sock")); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("socket left behind after a failed listen: %v", serr)
	}
}

func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "a.sock")
	stale, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("stale socket not left: %v", err)
	}
	ln, err := listen(context.Background(), SocketOptions{Path: path})
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	ln.release()
}

func TestListenRefusesLiveSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "a.sock")
	first, err := listen(context.Background(), SocketOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer first.release()
	_, err = listen(context.Background(), SocketOptions{Path: path})
	if !errors.Is(err, ErrInUse) || err.Error() != "another assetd is already serving "+path {
		t.Fatalf("second listen: err = %v, want ErrInUse naming the socket", err)
	}
	// Some other program (no lock) answering on the path is refused too.
	other := filepath.Join(filepath.Dir(path), "b.sock")
	l, err := net.Listen("unix", other)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := listen(context.Background(), SocketOptions{Path: other}); !errors.Is(err, ErrInUse) {
		t.Fatalf("listen on a live foreign socket: err = %v, want ErrInUse", err)
	}
	// The first daemon still serves.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("the first socket no longer answers: %v", err)
	}
	c.Close()
}

func TestListenRefusesNonSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "a.sock")
	if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := listen(context.Background(), SocketOptions{Path: path}); err == nil {
		t.Fatal("listen replaced a regular file")
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
		t.Errorf("the file was touched: %q, %v", b, err)
	}
}

// TestLockFileRemovedAtCleanStop: a clean stop leaves no .lock file; a start
// refused while a daemon serves leaves that daemon's lock file and lock.
func TestLockFileRemovedAtCleanStop(t *testing.T) {
	path := filepath.Join(shortDir(t), "a.sock")
	first, err := listen(context.Background(), SocketOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Fatalf("no lock file while serving: %v", err)
	}
	if _, err := listen(context.Background(), SocketOptions{Path: path}); !errors.Is(err, ErrInUse) {
		t.Fatalf("second listen: %v, want ErrInUse", err)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Fatalf("a refused start removed the lock file: %v", err)
	}
	if _, err := listen(context.Background(), SocketOptions{Path: path}); !errors.Is(err, ErrInUse) {
		t.Fatalf("third listen: %v, want ErrInUse (the first daemon's lock must hold)", err)
	}
	first.release()
	for _, p := range []string{path, path + ".lock"} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after a clean stop: %v, want it removed", filepath.Base(p), err)
		}
	}
}

// TestLockOnRemovedFileIsRetaken: a starter that opened the lock file
// just before its holder removed it and let go locks a file no longer at the
// path; lockSocket must not count that as the lock, or it and a later
// starter (which makes a new file) could both hold one.
func TestLockOnRemovedFileIsRetaken(t *testing.T) {
	path := filepath.Join(shortDir(t), "a.sock")
	first, err := lockSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	lockOpened = func() {
		calls++
		if calls == 1 {
			unlockSocket(first) // the holder stops between our open and flock
		}
	}
	defer func() { lockOpened = func() {} }()
	second, err := lockSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	defer unlockSocket(second)
	held, err := second.Stat()
	if err != nil {
		t.Fatal(err)
	}
	now, err := os.Stat(path + ".lock")
	if err != nil || !os.SameFile(held, now) {
		t.Fatalf("the lock held is not on the file at the path (%v): another starter could lock that one too", err)
	}
	if calls != 2 {
		t.Errorf("lockSocket opened the file %d times, want 2 (one retry)", calls)
	}
}
