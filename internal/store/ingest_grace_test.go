package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestAbandonedPartialCollected: an indexed partial nothing wrote to for
// ingestGrace (its avatar moved to another version, say) is removed at
// Open; one written to recently stays for resume.
func TestAbandonedPartialCollected(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	s := openT(t, dir, Options{Now: clk.Now})
	ctx := context.Background()
	partial := func(content string) string {
		d := digestOf([]byte(content))
		w, err := s.Ingest(ctx, d, int64(len(content)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content[:3])); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return d
	}
	abandoned, fresh := partial("abandoned partial"), partial("fresh partial")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	long := clk.Now()
	clk.Advance(2 * ingestGrace)
	for d, at := range map[string]time.Time{abandoned: long, fresh: clk.Now()} {
		if err := os.Chtimes(filepath.Join(dir, "ingest", d), at, at); err != nil {
			t.Fatal(err)
		}
	}
	s = openT(t, dir, Options{Now: clk.Now})
	defer s.Close()
	if n := s.Partial(abandoned); n != 0 {
		t.Errorf("an abandoned partial of %d bytes is kept", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "ingest", abandoned)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the abandoned partial's file is kept (%v)", err)
	}
	if n := s.Partial(fresh); n != 3 {
		t.Errorf("a fresh partial holds %d bytes after Open, want 3", n)
	}
	checkConsistent(t, s)
}

// TestLegacyPartialAdopted: a partial an older assetd left in
// ingest/<hex>/data becomes ingest/<hex> at Open, and the next Ingest
// resumes it; an empty legacy directory goes.
func TestLegacyPartialAdopted(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	s.Close()
	content := []byte("resumed from the old layout")
	d, empty := digestOf(content), digestOf([]byte("nothing written"))
	for name, data := range map[string][]byte{d: content[:7], empty: nil} {
		legacy := filepath.Join(dir, "ingest", name)
		if err := os.Mkdir(legacy, 0o700); err != nil {
			t.Fatal(err)
		}
		if data != nil {
			if err := os.WriteFile(filepath.Join(legacy, "data"), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	s = openT(t, dir, Options{})
	defer s.Close()
	if fi, err := os.Lstat(filepath.Join(dir, "ingest", d)); err != nil || !fi.Mode().IsRegular() || fi.Size() != 7 {
		t.Fatalf("ingest/<hex> after Open: %v, %v; want a file of 7 bytes", fi, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ingest", empty)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("an empty legacy ingest directory is kept (%v)", err)
	}
	w, err := s.Ingest(context.Background(), d, int64(len(content)))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Size() != 7 {
		t.Fatalf("Ingest resumes at %d, want 7", w.Size())
	}
	if _, err := w.Write(content[7:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if !s.HasBlob(d) {
		t.Error("the resumed blob is not committed")
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, "ingest")); len(ents) != 0 {
		t.Errorf("ingest/ holds %d entries after the commit", len(ents))
	}
	checkConsistent(t, s)
}
