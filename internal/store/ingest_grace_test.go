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
		if err := os.Chtimes(filepath.Join(dir, "ingest", d, "data"), at, at); err != nil {
			t.Fatal(err)
		}
	}
	s = openT(t, dir, Options{Now: clk.Now})
	defer s.Close()
	if n := s.Partial(abandoned); n != 0 {
		t.Errorf("an abandoned partial of %d bytes is kept", n)
	}
	if _, err := os.Stat(filepath.Join(dir, "ingest", abandoned)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the abandoned partial's directory is kept (%v)", err)
	}
	if n := s.Partial(fresh); n != 3 {
		t.Errorf("a fresh partial holds %d bytes after Open, want 3", n)
	}
	checkConsistent(t, s)
}
