package store

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestConcurrentCommitsShareATransaction: commits that wait for the index
// at the same time are written in one bbolt transaction (one fdatasync),
// each file durable in blobs/ before it.
func TestConcurrentCommitsShareATransaction(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	txid := func() (id int) {
		s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	const n = 8
	s.wmu.Lock() // as a long index write would
	before := txid()
	var wg sync.WaitGroup
	errc := make(chan error, n)
	digests := make([]string, n)
	for i := range n {
		data := []byte(fmt.Sprintf("blob %d", i))
		digests[i] = digestOf(data)
		wg.Go(func() {
			w, err := s.Ingest(context.Background(), digests[i], int64(len(data)))
			if err == nil {
				_, err = w.Write(data)
			}
			if err == nil {
				err = w.Commit()
			}
			errc <- err
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.commits.mu.Lock()
		queued := len(s.commits.pending)
		s.commits.mu.Unlock()
		if queued == n {
			break
		}
		if time.Now().After(deadline) {
			s.wmu.Unlock()
			t.Fatalf("%d commits queued, want %d", queued, n)
		}
		runtime.Gosched()
	}
	s.wmu.Unlock()
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := txid() - before; got != 1 {
		t.Errorf("%d commits took %d index transactions, want 1", n, got)
	}
	for _, d := range digests {
		if !s.HasBlob(d) {
			t.Errorf("blob %s not committed", d)
		}
	}
	checkConsistent(t, s)
}

// TestConcurrentCommitsShareADirectoryFsync: commits whose files are
// fsynced while another batch holds the rename stage are renamed
// together, made durable by one fsync of blobs/ and indexed in one
// transaction.
func TestConcurrentCommitsShareADirectoryFsync(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	txid := func() (id int) {
		s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	const n = 8
	s.publishes.run.Lock() // as a long directory fsync would
	syncs, txns := s.dirSyncs.Load(), txid()
	var wg sync.WaitGroup
	errc := make(chan error, n)
	digests := make([]string, n)
	for i := range n {
		data := []byte(fmt.Sprintf("blob %d", i))
		digests[i] = digestOf(data)
		wg.Go(func() {
			w, err := s.Ingest(context.Background(), digests[i], int64(len(data)))
			if err == nil {
				_, err = w.Write(data)
			}
			if err == nil {
				err = w.Commit()
			}
			errc <- err
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.publishes.mu.Lock()
		queued := len(s.publishes.pending)
		s.publishes.mu.Unlock()
		if queued == n {
			break
		}
		if time.Now().After(deadline) {
			s.publishes.run.Unlock()
			t.Fatalf("%d commits queued, want %d", queued, n)
		}
		runtime.Gosched()
	}
	s.publishes.run.Unlock()
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := s.dirSyncs.Load() - syncs; got != 1 {
		t.Errorf("%d commits took %d fsyncs of blobs/, want 1", n, got)
	}
	if got := txid() - txns; got != 1 {
		t.Errorf("%d commits took %d index transactions, want 1", n, got)
	}
	for _, d := range digests {
		if !s.HasBlob(d) {
			t.Errorf("blob %s not committed", d)
		}
	}
	checkConsistent(t, s)
}
