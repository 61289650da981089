package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A blob record whose key is not a digest (a damaged or foreign index)
// is dropped by Open's reconcile: the counters (Stats, the quota) must not
// count it out when they never counted it in, and no file is removed by
// that key (it is no name in blobs/sha256).
func TestOpenDropsBadRecordKeyWithoutCountDrift(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	putT(t, s, "a", "v1", map[string]string{"x": "hello", "y": "world!"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(filepath.Join(dir, "index.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlobs)
		return errors.Join(b.Put([]byte("not-a-digest"), blobRec{size: 1000, committed: 1}.encode()),
			b.Put([]byte("../../precious"), blobRec{size: 7, committed: 1}.encode()))
	})
	if err := errors.Join(err, db.Close()); err != nil {
		t.Fatal(err)
	}

	precious := filepath.Join(dir, "precious") // blobs/sha256/../../precious
	if err := os.WriteFile(precious, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}

	s = openT(t, dir, Options{})
	defer s.Close()
	st := s.Stats()
	if st.Blobs != 2 || st.TotalBytes != 11 {
		t.Errorf("Stats after Open: %d blobs, %d bytes; want 2 blobs, 11 bytes", st.Blobs, st.TotalBytes)
	}
	if _, err := os.Stat(precious); err != nil {
		t.Errorf("a file outside blobs/sha256 named by a record's key: %v", err)
	}
	checkConsistent(t, s)
}

// A start after a crash in the middle of a gc finds its files, more than
// removeBatch, with no record, and removes them after Open returns. A
// load short of disk meanwhile waits for that removal, as for a gc's
// (freeFor), instead of evicting avatars or failing for want of the space
// the removal is freeing.
func TestEnsureSpaceWaitsForOpensStrayRemoval(t *testing.T) {
	dir := t.TempDir()
	s := openT(t, dir, Options{})
	putT(t, s, "a", "v1", map[string]string{"x": "kept"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	for i := range removeBatch + 44 { // a gc's files, its index change durable
		data := []byte(fmt.Sprintf("stray %d", i))
		if err := os.WriteFile(filepath.Join(blobs, digestOf(data)), data, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	// The disk: 1,000,000 bytes less 1,000 for each file of blobs/sha256.
	// The first look at it lets Open's removal of the strays go on.
	release := make(chan struct{})
	var once sync.Once
	free := func(string) (int64, error) {
		once.Do(func() { close(release) })
		ents, err := os.ReadDir(blobs)
		return 1_000_000 - 1000*int64(len(ents)), err
	}
	defer func() { sizeCheckHook = nil }()
	sizeCheckHook = func() { <-release }
	s, err := Open(dir, Options{FreeSpace: free})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evicted, err := s.EnsureSpace(900_000)
	if err != nil || len(evicted) != 0 {
		t.Fatalf("EnsureSpace(900,000) with ~300,000 bytes of strays being removed: evicted %v, %v; want none, nil", evicted, err)
	}
	if _, ok := s.Get("a"); !ok {
		t.Error("avatar a was evicted")
	}
}
