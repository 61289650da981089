package store

import (
	"errors"
	"os"
	"path/filepath"
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
