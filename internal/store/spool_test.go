package store

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSpoolPrivateThenShared: an import's file is committed 0440 with the
// daemon's group; the origin bringing the same digest makes it 0444; a
// spool of a digest already committed keeps the committed file's mode.
func TestSpoolPrivateThenShared(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	defer s.Close()
	data := []byte("a private file of the importer's")
	d := spoolT(t, s, data, true)
	mode := func() os.FileMode {
		t.Helper()
		fi, err := os.Stat(s.BlobPath(d))
		if err != nil {
			t.Fatal(err)
		}
		if gid := fi.Sys().(*syscall.Stat_t).Gid; gid != uint32(os.Getegid()) {
			t.Errorf("blob group %d, want the daemon's %d", gid, os.Getegid())
		}
		return fi.Mode().Perm()
	}
	if got := mode(); got != ModePrivate {
		t.Errorf("imported blob mode %v, want %v", got, ModePrivate)
	}
	if !s.HasBlob(d) {
		t.Fatal("the spool was not committed")
	}
	// The same bytes again: already committed, the spool goes.
	spoolT(t, s, data, false)
	if got := mode(); got != ModePrivate {
		t.Errorf("after a second spool: mode %v, want %v kept", got, ModePrivate)
	}
	if err := s.Share(d); err != nil {
		t.Fatal(err)
	}
	if got := mode(); got != ModeShared {
		t.Errorf("after Share: mode %v, want %v", got, ModeShared)
	}
	// A shared spool is 0444 from the start.
	d2 := spoolT(t, s, []byte("public"), false)
	if fi, err := os.Stat(s.BlobPath(d2)); err != nil || fi.Mode().Perm() != ModeShared {
		t.Errorf("shared spool: %v, %v", fi, err)
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ keeps %d files after the commits", len(ents))
	}
	checkConsistent(t, s)
}

// TestSpoolBoundsAndCleanup: a spool refuses bytes beyond its size, and
// spools left by a crash are gone at the next Open.
func TestSpoolBoundsAndCleanup(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	sp, err := s.Spool(4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Write([]byte("12345")); err == nil {
		t.Error("a spool of 4 bytes took 5")
	}
	if _, err := sp.Write([]byte("1234")); err != nil {
		t.Fatal(err)
	}
	// A crash now: the spool stays on disk.
	s.Close()
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 1 {
		t.Fatalf("tmp/ holds %d files, want the spool", len(ents))
	}
	s = openT(t, dir, Options{})
	defer s.Close()
	if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
		t.Errorf("tmp/ holds %d files after Open, want none", len(ents))
	}
	checkConsistent(t, s)
}

func spoolT(t testing.TB, s *Store, data []byte, private bool) string {
	t.Helper()
	sp, err := s.Spool(int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Write(data); err != nil {
		t.Fatal(err)
	}
	d := sp.Digest()
	if d != digestOf(data) {
		t.Fatalf("spool digest %s, want %s", d, digestOf(data))
	}
	if err := s.CommitSpool(context.Background(), sp, private); err != nil {
		t.Fatal(err)
	}
	return d
}
