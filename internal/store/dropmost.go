package store

import (
	"bytes"
	"cmp"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// dropMost deletes the avatars ids (sorted, distinct, each in s.avatars),
// more than half of them (mostOf), keeping the entries keep (every other
// one of s.avatars), as a change of dropAvatar for each of ids applied
// would, but without one: a gc of 100,000 avatars keeping 1,000 made a
// change of ~99,000 avatars and ~300,000 blob records, each read with a
// search of the index from its root and held in maps (~1 s). Here each
// bucket is walked once in key order beside the sorted list of what goes
// and rebuilt with what it keeps: the avatars' records give the digests
// they referenced (sorted), the blobs bucket's walk takes those
// references off its records, and drops the records left without any
// that no lease holds. Memory gets a new map of the entries kept. The
// caller holds wmu. Its files go as a gc's do (commitIndex, later).
func (s *Store) dropMost(ids []string, keep []idEntry) error {
	avatars := make(map[string]*entry, len(keep))
	for _, p := range keep {
		avatars[p.id] = p.e
	}
	return s.commitIndex(func(tx *bolt.Tx, w *indexWrite) error { return s.writeDrop(tx, ids, w) }, func() {
		s.avatars = avatars
		for id := range s.hot {
			if avatars[id] == nil {
				delete(s.hot, id)
			}
		}
	}, true)
}

// writeDrop rebuilds in tx the avatars' buckets without ids (sorted) and
// the blobs bucket without the references of their records: the index
// part of dropMost, whose counts, uncommitted records and files to remove
// it records in w.
func (s *Store) writeDrop(tx *bolt.Tx, ids []string, w *indexWrite) error {
	refs := make([][32]byte, 0, 4*len(ids)) // the digests each record of ids references, once per record
	var derr error
	for _, name := range [][]byte{bucketAvatars, bucketRaw, bucketLastUsed} {
		i := 0 // ids[:i] are before the walk's key
		decode := bytes.Equal(name, bucketAvatars)
		_, err := rebuildBucketWith(tx, name, func(k, v []byte) ([]byte, bool) {
			for i < len(ids) && ids[i] < string(k) {
				i++
			}
			if i == len(ids) || ids[i] != string(k) {
				return v, true
			}
			if decode {
				var err error
				if _, refs, err = decodeEntry(v, refs); err != nil {
					derr = cmp.Or(derr, fmt.Errorf("avatar %q: %w", k, err))
				}
			}
			return nil, false
		})
		if err != nil || derr != nil {
			return cmp.Or(derr, err)
		}
	}
	sortDigests(refs)
	j := 0 // refs[:j] are before the walk's key
	_, err := rebuildBucketWith(tx, bucketBlobs, func(k, v []byte) ([]byte, bool) {
		d, ok := rawDigest(k)
		if !ok {
			return v, true // no digest: no record of ids references it
		}
		for j < len(refs) && compareDigests(refs[j], d) < 0 {
			j++ // referenced, but no record (dropAvatar: nothing to do)
		}
		n := 0
		for ; j < len(refs) && refs[j] == d; j++ {
			n++
		}
		if n == 0 {
			return v, true
		}
		old, err := decodeBlob(v)
		if err != nil {
			derr = cmp.Or(derr, fmt.Errorf("blob %s: %w", k, err))
			return v, true
		}
		r := old
		r.refs = max(r.refs-int64(n), 0) // as n refs of -1 each
		w.counts.add(old, -1)
		if r.refs == 0 && !s.leasedKey(k) { // collectDerefd
			w.uncommits++
			if old.isCommitted() {
				w.gone = append(w.gone, string(k))
			}
			return nil, false
		}
		w.counts.add(r, +1)
		return r.encode(), true
	})
	return cmp.Or(derr, err)
}

// leasedKey is leased for a key of the blobs bucket.
func (s *Store) leasedKey(k []byte) bool {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	return s.leases[string(k)] > 0
}

// rebuildBucket replaces bucket name by a new one holding the keys keep
// accepts, copied in order, and returns it.
func rebuildBucket(tx *bolt.Tx, name []byte, keep func(k, v []byte) bool) (*bolt.Bucket, error) {
	return rebuildBucketWith(tx, name, func(k, v []byte) ([]byte, bool) { return v, keep(k, v) })
}

// rebuildBucketWith replaces bucket name by a new one holding the keys f
// keeps, in order, each with the value f returns for it (v, or a new one),
// and returns it.
func rebuildBucketWith(tx *bolt.Tx, name []byte, f func(k, v []byte) ([]byte, bool)) (*bolt.Bucket, error) {
	var kept [][2][]byte
	cur := tx.Bucket(name).Cursor()
	for k, v := cur.First(); k != nil; k, v = cur.Next() {
		if nv, ok := f(k, v); ok {
			kept = append(kept, [2][]byte{bytes.Clone(k), bytes.Clone(nv)})
		}
	}
	if err := tx.DeleteBucket(name); err != nil {
		return nil, err
	}
	b, err := tx.CreateBucket(name)
	if err != nil {
		return nil, err
	}
	for _, kv := range kept {
		if err := b.Put(kv[0], kv[1]); err != nil {
			return nil, err
		}
	}
	return b, nil
}
