package fetch

import (
	"github.com/assetd/assetd/internal/testkit"

	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// overlapSink is a SplitSink whose first Hash waits until Store has taken
// the next read: it returns only if Download stores and hashes on two
// goroutines at once.
type overlapSink struct {
	*fileSink
	mu      sync.Mutex
	stores  int
	hashes  int
	stored  chan struct{} // closed by the second Store
	overlap bool
}

func (s *overlapSink) Store(p []byte) (int, error) {
	s.mu.Lock()
	s.stores++
	if s.stores == 2 {
		close(s.stored)
	}
	s.mu.Unlock()
	return s.fileSink.Store(p)
}

func (s *overlapSink) Hash(p []byte) {
	s.mu.Lock()
	s.hashes++
	first := s.hashes == 1
	s.mu.Unlock()
	if first {
		select {
		case <-s.stored:
			s.overlap = true
		case <-time.After(10 * time.Second): // a failure, not a wait for a result
		}
	}
	s.fileSink.Hash(p)
}

// TestDownloadOverlapsStoreAndHash: with a SplitSink a large body's file
// writes and hashes run at once (a read is stored while the read before it
// is hashed), and the digest is still exactly the stored bytes'.
func TestDownloadOverlapsStoreAndHash(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(6<<20+5, 61)
	o.AddBlob(data)
	c := newClient(t, testConfig(o.URL()))
	sink := &overlapSink{fileSink: newSink(t), stored: make(chan struct{})}
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: assetOf("model.splat", data)}, sink, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.bytes(t), data) {
		t.Fatalf("sink holds %d bytes, want %d", sink.Size(), len(data))
	}
	if sink.stores < 2 || !sink.overlap {
		t.Fatalf("%d Stores, %d Hashes, overlapped %v: want a Store during the first Hash", sink.stores, sink.hashes, sink.overlap)
	}
}

// failingStore fails one Store after limit bytes with ENOSPC.
type failingStore struct {
	*fileSink
	limit int64
	fired bool
}

func (s *failingStore) Store(p []byte) (int, error) {
	if !s.fired && s.n+int64(len(p)) > s.limit {
		s.fired = true
		n, err := s.fileSink.Store(p[:s.limit-s.n])
		if err == nil {
			err = syscall.ENOSPC
		}
		return n, err
	}
	return s.fileSink.Store(p)
}

// TestSplitSinkShortStoreResumes: a Store that takes part of a read and
// fails leaves a sink whose hash holds exactly the stored bytes (the
// tests' sink, unlike store.Writer, never hashes its file again), so the
// next Download resumes from there with Range and verifies.
func TestSplitSinkShortStoreResumes(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(5<<20+3, 62)
	o.AddBlob(data)
	c := newClient(t, testConfig(o.URL()))
	sink := &failingStore{fileSink: newSink(t), limit: 3<<20 + 1234}
	a := assetOf("model.splat", data)
	err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, sink, nil)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Download: %v, want ENOSPC", err)
	}
	if sink.Size() != sink.limit {
		t.Fatalf("sink holds %d bytes after the failed Store, want %d", sink.Size(), sink.limit)
	}
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, sink, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.bytes(t), data) {
		t.Fatalf("sink holds %d bytes, want %d", sink.Size(), len(data))
	}
	if h := o.Headers()[o.TotalHits()-1].Get("Range"); h != "bytes=3146962-" {
		t.Errorf("resumed with Range %q", h)
	}
}

// TestPumpYieldsToHasher: on one CPU, each chunk the pump stores is hashed
// before the next is stored: the caller hands the chunk to the hasher and
// yields (yieldToHasher), instead of going on to its next store, a file
// write that holds the CPU while the hasher, the pipeline's longest stage,
// waits runnable. Without the yield the caller stores every chunk the
// reader has ready (four) before the hasher runs. Store and Hash are in
// memory here (no system call, in which the runtime could hand the CPU to
// the hasher on its own), so the order is the scheduler's alone.
func TestPumpYieldsToHasher(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	c := newClient(t, testConfig("http://127.0.0.1:1"))
	data := randBytes(8*copyBufferSize+5, 63)
	var (
		events []byte // 'S' store, 'H' hash, in order
		stored []byte
		h      = sha256.New()
		mu     sync.Mutex
	)
	put := func(p []byte, rerr error) (int, bool, error) {
		if len(p) > 0 {
			mu.Lock()
			events = append(events, 'S')
			mu.Unlock()
			stored = append(stored, p...)
		}
		if rerr == io.EOF {
			return len(p), true, nil
		}
		return len(p), rerr != nil, rerr
	}
	hash := func(p []byte) {
		mu.Lock()
		events = append(events, 'H')
		mu.Unlock()
		h.Write(p)
	}
	// bytes.Reader is no *body: readChunk hands on each read of up to
	// copyBufferSize at once, nine chunks.
	if err := c.pump(bytes.NewReader(data), put, hash); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stored, data) || hex.EncodeToString(h.Sum(nil)) != digest(data) {
		t.Fatalf("stored %d bytes, hashed %x: want the %d bytes and their digest", len(stored), h.Sum(nil), len(data))
	}
	// The scheduler takes its global queue (where a yield puts the
	// caller) first at one schedule in 61, so a yield now and then does
	// not take: two stores in a row may occur, never all the reader has.
	if strings.Contains(string(events), "SSS") || len(events) != 18 {
		t.Fatalf("stores and hashes ran in the order %s, want each store's hash before the next store (SHSH…)", events)
	}
}
