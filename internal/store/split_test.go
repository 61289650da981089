package store

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
)

// TestWriterStoreAndHash: a blob written with Store on one goroutine and
// hashed with Hash on another, at once, commits with the file's digest;
// a writer whose Hash missed bytes Store took hashes the file again, so
// that Digest is always the file's and a wrong hash is never committed.
func TestWriterStoreAndHash(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	data := bytes.Repeat([]byte("assetd split writer "), 20000)
	d := digestOf(data)
	w, err := s.Ingest(context.Background(), d, int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	const chunk = 4096
	hashq := make(chan []byte, 4)
	var wg sync.WaitGroup
	wg.Go(func() {
		for p := range hashq {
			w.Hash(p)
		}
	})
	for off := 0; off < len(data); off += chunk {
		p := data[off:min(off+chunk, len(data))]
		n, err := w.Store(p)
		if err != nil || n != len(p) {
			t.Fatalf("Store: %d, %v", n, err)
		}
		hashq <- p[:n]
	}
	close(hashq)
	wg.Wait()
	if got := w.Digest(); got != d {
		t.Fatalf("Digest %s, want %s", got, d)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(s.BlobPath(d)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("committed blob: %d bytes, %v", len(got), err)
	}

	// Hash skips a piece: Digest hashes the file again.
	other := bytes.Repeat([]byte("another blob "), 30000)
	d2 := digestOf(other)
	w2, err := s.Ingest(context.Background(), d2, int64(len(other)))
	if err != nil {
		t.Fatal(err)
	}
	half := len(other) / 2
	if _, err := w2.Store(other[:half]); err != nil {
		t.Fatal(err)
	}
	if _, err := w2.Store(other[half:]); err != nil {
		t.Fatal(err)
	}
	w2.Hash(other[half:])
	if got := w2.Digest(); got != d2 {
		t.Fatalf("Digest after a missed Hash %s, want the file's %s", got, d2)
	}
	if err := w2.Commit(); err != nil {
		t.Fatal(err)
	}
}
