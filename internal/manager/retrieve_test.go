package manager

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/store"
)

// TestRetrieveNeverDownloads: with SelfHeal on, Retrieve of an avatar
// whose file is gone answers 409 and records the damage (state damaged, a
// state event), but removes nothing and starts no load: healing is for
// Verify, the scrub and the blob watcher.
func TestRetrieveNeverDownloads(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{SelfHeal: true})
	files := files3("rohan")
	e.o.Publish(avatarOf("rohan", "v1", files))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	n := e.o.Requests()
	events, cancel := e.m.Subscribe()
	defer cancel()
	victim := digestOf(files["meta.json"])
	if err := os.Remove(e.st.BlobPath(victim)); err != nil {
		t.Fatal(err)
	}
	_, err := e.m.Retrieve("rohan")
	if !errors.Is(err, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonDamaged}) || errs.HTTPStatus(err) != 409 {
		t.Fatalf("Retrieve = %v", err)
	}
	if l := e.m.List(); len(l.Loads) != 0 {
		t.Errorf("Retrieve started a load: %+v", l.Loads)
	}
	if got := e.o.Requests(); got != n {
		t.Errorf("Retrieve made %d requests", got-n)
	}
	if !e.st.HasBlob(victim) {
		t.Error("Retrieve removed the blob")
	}
	if a, _ := e.st.Get("rohan"); a.State != store.StateDamaged || len(a.Damaged) != 1 || a.Damaged[0] != "meta.json" {
		t.Errorf("stored state %s %v", a.State, a.Damaged)
	}
	ev := waitState(t, events, "rohan", apitype.StateDamaged)
	if ev.Error == nil || ev.Error.Code != errcode.AvatarAssetMissing {
		t.Errorf("damaged event %+v", ev)
	}
	// Verify (the watcher's or the scrub's) drops the blob and heals.
	res, err := e.m.Verify(t.Context(), "rohan")
	if err != nil || !res.Healing {
		t.Fatalf("Verify = %+v, %v", res, err)
	}
	waitState(t, events, "rohan", apitype.StateReady)
	a, err := e.m.Retrieve("rohan")
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, a, files)
}

// TestRetrieveTruncatedInPlace: a file truncated in place right after a
// Retrieve that found it whole (the blobs directory unchanged) fails the
// very next Retrieve with 409 damaged; before, a check under a second old
// was trusted and the short file was served as ready.
func TestRetrieveTruncatedInPlace(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	files := files3("rohan")
	e.o.Publish(avatarOf("rohan", "v1", files))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	victim := e.st.BlobPath(digestOf(files["model.splat"]))
	// Let the blobs directory's times settle (a check that might trust
	// them would), then find the avatar whole.
	settled(t, filepath.Dir(victim))
	if _, err := e.m.Retrieve("rohan"); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(victim, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(victim, int64(len(files["model.splat"]))/2); err != nil {
		t.Fatal(err)
	}
	a, err := e.m.Retrieve("rohan")
	if !errors.Is(err, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonDamaged}) || errs.HTTPStatus(err) != 409 {
		t.Fatalf("Retrieve = %+v, %v; want 409 damaged", a, err)
	}
	if e := errs.From(err); e.Asset != "model.splat" {
		t.Errorf("asset %q, want model.splat", e.Asset)
	}
}

// settled waits until dir's change time is 100ms in the past (by the
// file-time clock, which may lag the wall clock by a tick).
func settled(t *testing.T, dir string) {
	t.Helper()
	for {
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			t.Fatal(err)
		}
		if time.Since(time.Unix(st.Ctim.Unix())) > 100*time.Millisecond {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRetrieveDamagedAfterTrusted: after two Retrieves found the avatar
// whole (the second may trust the store's watch of the blob directory
// instead of a stat), a file removed, truncated, or replaced by another
// of a different size behind the daemon's back fails the very next
// Retrieve with 409 damaged naming it. A check that trusted an earlier
// stat blindly would serve each as ready.
func TestRetrieveDamagedAfterTrusted(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	damage := map[string]func(path string, size int64) error{
		"removed": func(p string, _ int64) error { return os.Remove(p) },
		"truncated": func(p string, size int64) error {
			return errors.Join(os.Chmod(p, 0o644), os.Truncate(p, size/2))
		},
		"replaced": func(p string, size int64) error {
			other := filepath.Join(t.TempDir(), "other")
			if err := os.WriteFile(other, make([]byte, size+1), 0o444); err != nil {
				return err
			}
			return os.Rename(other, p)
		},
	}
	for how, f := range damage {
		id := "av-" + how
		files := files3(id)
		e.o.Publish(avatarOf(id, "v1", files))
		mustLoad(t, e.m, id, LoadOptions{})
		for range 2 {
			if _, err := e.m.Retrieve(id); err != nil {
				t.Fatalf("%s: %v", how, err)
			}
		}
		data := files["anim/talk.bin"]
		if err := f(e.st.BlobPath(digestOf(data)), int64(len(data))); err != nil {
			t.Fatalf("%s: %v", how, err)
		}
		a, err := e.m.Retrieve(id)
		if !errors.Is(err, &errcode.Error{Code: errcode.AvatarAssetMissing, Reason: errcode.ReasonDamaged}) || errs.HTTPStatus(err) != 409 {
			t.Fatalf("%s: Retrieve = %+v, %v; want 409 damaged", how, a, err)
		}
		if e := errs.From(err); e.Asset != "anim/talk.bin" {
			t.Errorf("%s: asset %q, want anim/talk.bin", how, e.Asset)
		}
	}
}
