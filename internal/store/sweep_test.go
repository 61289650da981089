package store

import (
	"context"
	"os"
	"testing"
)

// TestSweepLeftovers: Leftovers counts the partial downloads and the
// blobs no avatar uses; Sweep removes them at once, but a partial a
// writer has open and a blob a load has leased.
func TestSweepLeftovers(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	ctx := context.Background()
	putT(t, s, "rohan", "1", map[string]string{"a.bin": "rohan's file"})
	unused := commitT(t, s, []byte("committed by a load that failed"))
	leased := commitT(t, s, []byte("committed by a load in flight"))
	lease := s.Lease(leased)
	defer lease.Release()

	partial := func(content string) *Writer {
		w, err := s.Ingest(ctx, digestOf([]byte(content)), int64(len(content)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(content[:10])); err != nil {
			t.Fatal(err)
		}
		return w
	}
	closed := partial("a partial nobody resumes")
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	open := partial("a partial being written")
	defer open.Close()

	want := Leftovers{Partials: 2, PartialBytes: 20, Unused: 2,
		UnusedBytes: int64(len("committed by a load that failed") + len("committed by a load in flight"))}
	if got := s.Leftovers(); got != want {
		t.Errorf("Leftovers %+v, want %+v", got, want)
	}
	swept, err := s.Sweep()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Leftovers{Partials: 1, PartialBytes: 10, Unused: 1, UnusedBytes: int64(len("committed by a load that failed"))}); swept != want {
		t.Errorf("Sweep removed %+v, want %+v", swept, want)
	}
	if s.HasBlob(unused) || !s.HasBlob(leased) {
		t.Errorf("after Sweep: unused blob present %v, leased blob present %v", s.HasBlob(unused), s.HasBlob(leased))
	}
	if _, err := os.Stat(s.BlobPath(unused)); !os.IsNotExist(err) {
		t.Errorf("the unused blob's file stays: %v", err)
	}
	if n := s.Partial(open.digest); n != 10 {
		t.Errorf("the open partial holds %d bytes after Sweep, want 10", n)
	}
	if n := s.Partial(closed.digest); n != 0 {
		t.Errorf("the closed partial holds %d bytes after Sweep, want none", n)
	}
	if _, ok := s.Get("rohan"); !ok {
		t.Error("Sweep removed an avatar")
	}
	checkConsistent(t, s)
}
