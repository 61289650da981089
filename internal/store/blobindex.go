package store

import (
	"bytes"
	"encoding/hex"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Blob records are not held in memory: 300,000 of them took ~160 B each.
// They are read from the index (bbolt's mapped file, not the heap): one
// lookup for HasBlob and VerifyBlob, through the change's read
// transaction while a change is built, and by a cursor walk for what
// scans them all (eviction's orphans, Sweep, DeleteAll, Open's
// reconcile). What is asked of all of them often (Stats, Leftovers, the
// quota) is counted in memory by apply (blobCounts).

// blobCounts are the counters of the blob records, kept by apply under mu.
type blobCounts struct {
	total       int64 // bytes of committed blobs
	committed   int   // committed blobs
	unused      int   // committed blobs no avatar references
	unusedBytes int64
}

// add counts r in (sign +1) or out (-1).
func (n *blobCounts) add(r blobRec, sign int) {
	if !r.isCommitted() {
		return
	}
	n.total += int64(sign) * r.size
	n.committed += sign
	if r.refs == 0 {
		n.unused += sign
		n.unusedBytes += int64(sign) * r.size
	}
}

// readBlob is d's record in tx.
func readBlob(tx *bolt.Tx, d string) (blobRec, bool, error) {
	v := tx.Bucket(bucketBlobs).Get([]byte(d))
	if v == nil {
		return blobRec{}, false, nil
	}
	r, err := decodeBlob(v)
	if err != nil {
		return blobRec{}, false, fmt.Errorf("blob %s: %w", d, err)
	}
	return r, true, nil
}

// blobRecord is d's record, read in a transaction of its own.
func (s *Store) blobRecord(d string) (r blobRec, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		r, ok, err = readBlob(tx, d)
		return err
	})
	return r, ok, err
}

// committed reports whether d's record says committed; an index that
// cannot be read says no (and is logged).
func (s *Store) committed(d string) bool {
	r, ok, err := s.blobRecord(d)
	if err != nil {
		s.log.Error("store: read blob record", "digest", d, "err", err)
	}
	return ok && r.isCommitted()
}

// eachBlob calls f with every blob record of tx, in digest order.
func eachBlob(tx *bolt.Tx, f func(d string, r blobRec) error) error {
	return tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
		r, err := decodeBlob(v)
		if err != nil {
			return fmt.Errorf("blob %s: %w", k, err)
		}
		return f(string(k), r)
	})
}

// recordDigests is the distinct digests of avatar id's current version,
// from its record in tx; none when it has no record.
func recordDigests(tx *bolt.Tx, id string) ([]string, error) {
	v := tx.Bucket(bucketAvatars).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	_, raw, err := decodeEntry(v, nil)
	if err != nil {
		return nil, fmt.Errorf("avatar %q: %w", id, err)
	}
	ds := make([]string, len(raw))
	for i := range raw {
		ds[i] = hex.EncodeToString(raw[i][:])
	}
	return ds, nil
}

// avatarsUsing is the IDs of the avatars of tx whose current version
// uses digest, in ID order.
func avatarsUsing(tx *bolt.Tx, digest string) ([]string, error) {
	want, err := hex.DecodeString(digest)
	if err != nil || len(want) != 32 {
		return nil, badDigest(digest)
	}
	var ids []string
	var buf [][32]byte
	err = tx.Bucket(bucketAvatars).ForEach(func(k, v []byte) error {
		var err error
		if _, buf, err = decodeEntry(v, buf[:0]); err != nil {
			return fmt.Errorf("avatar %q: %w", k, err)
		}
		for i := range buf {
			if bytes.Equal(buf[i][:], want) {
				ids = append(ids, string(k))
				break
			}
		}
		return nil
	})
	return ids, err
}
