package store

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// change is one transaction's worth of index edits, applied to bbolt first
// and to memory after. Callers hold s.wmu from building it to applying it,
// and close it (apply does) when they do not apply it: the records it
// reads come from one read transaction, open until then.
type change struct {
	db  *bolt.DB
	rtx *bolt.Tx           // the reads' transaction, opened at the first read
	err error              // the first read that failed: apply returns it
	old map[string]blobRec // the index's records of blobs read (zero: none)

	avatars map[string]*entry   // nil value: delete the avatar
	full    map[string]*Avatar  // the avatar of each entry of avatars
	blobs   map[string]*blobRec // nil value: delete the record
	derefd  map[string]bool     // blobs that lost a reference
	raws    map[string][]byte   // raw manifests of new versions (nil: none)
	// later: more than removeBatch files it frees are removed by the
	// background remover (remove.go) after apply returns; else apply
	// removes them before it returns (an eviction needs the space now).
	later bool
}

func (s *Store) newChange() *change {
	return &change{db: s.db, old: map[string]blobRec{}, avatars: map[string]*entry{}, full: map[string]*Avatar{}, blobs: map[string]*blobRec{},
		derefd: map[string]bool{}, raws: map[string][]byte{}}
}

// tx is c's read transaction, nil (and c.err set) if it cannot begin.
func (c *change) tx() *bolt.Tx {
	if c.rtx == nil && c.err == nil {
		c.rtx, c.err = c.db.Begin(false)
	}
	return c.rtx
}

// fail records err, the first failure of c's reads.
func (c *change) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// close ends c's read transaction; apply must not write while it is open
// (a write that grows the index waits for every read transaction).
func (c *change) close() {
	if c.rtx != nil {
		c.rtx.Rollback()
		c.rtx = nil
	}
}

// blob is the record of d as the change has it so far.
func (s *Store) blob(c *change, d string) (blobRec, bool) {
	if r, ok := c.blobs[d]; ok {
		if r == nil {
			return blobRec{}, false
		}
		return *r, true
	}
	return c.indexed(d)
}

// indexed is d's record in the index (as c began), not c's.
func (c *change) indexed(d string) (blobRec, bool) {
	if r, ok := c.old[d]; ok {
		return r, r != blobRec{}
	}
	tx := c.tx()
	if tx == nil {
		return blobRec{}, false
	}
	r, ok, err := readBlob(tx, d)
	if err != nil {
		c.fail(err)
	}
	c.old[d] = r // the zero record: none
	return r, ok
}

func (s *Store) ref(c *change, d string, delta int64) {
	r, _ := s.blob(c, d)
	r.refs = max(r.refs+delta, 0)
	c.blobs[d] = &r
	if delta < 0 {
		c.derefd[d] = true
	}
}

// collectDerefd marks for deletion the blobs of c that lost their last
// reference, except leased ones: those stay committed, as orphans, for
// the lease's owner to reference.
func (s *Store) collectDerefd(c *change) {
	for d := range c.derefd {
		if r := c.blobs[d]; r != nil && r.refs == 0 && !s.leased(d) {
			c.blobs[d] = nil
		}
	}
}

// digestsOf is the distinct digests of avatar id's current version, from
// the index.
func (s *Store) digestsOf(c *change, id string) []string {
	tx := c.tx()
	if tx == nil {
		return nil
	}
	ds, err := recordDigests(tx, id)
	if err != nil {
		c.fail(err)
	}
	return ds
}

// dropAvatar removes id's references and the avatar.
func (s *Store) dropAvatar(c *change, id string) {
	if s.avatars[id] != nil {
		for _, d := range s.digestsOf(c, id) {
			s.ref(c, d, -1)
		}
	}
	c.avatars[id] = nil
}

// apply writes c in one bbolt transaction, then to memory, then deletes
// the files of blobs whose records went. Blobs that lost their last
// reference go with it, unless leased.
func (s *Store) apply(c *change) error {
	s.collectDerefd(c)
	c.close()
	if c.err != nil {
		return storeErr("index read", c.err)
	}
	return s.commitIndex(func(tx *bolt.Tx, w *indexWrite) error { return s.writeIndex(tx, c, w) }, func() {
		for id, e := range c.avatars {
			old := s.avatars[id]
			if e == nil {
				delete(s.avatars, id)
				delete(s.hot, id)
				continue
			}
			s.hotPut(id, c.full[id])
			if old != nil && e.lastUsed.Load() == 0 {
				e.lastUsed.Store(old.lastUsed.Load())
			}
			if old != nil && old.dirty.Load() {
				e.dirty.Store(true)
			}
			s.avatars[id] = e
		}
	}, c.later)
}

// commitIndex makes an index change: write records it in tx and what it
// did in w; once it is durable, mem updates the maps (under s.mu), the
// counters follow w, and the files of the blobs it freed are removed (a
// gc's, later: in the background when many). Readers outside wmu see
// wseq odd meanwhile and retry (hot.go). The caller holds wmu.
func (s *Store) commitIndex(write func(*bolt.Tx, *indexWrite) error, mem func(), later bool) error {
	s.wseq.Add(1)
	var w indexWrite
	err := s.db.Update(func(tx *bolt.Tx) error {
		w = indexWrite{} // (a retried function)
		return write(tx, &w)
	})
	if err != nil {
		s.wseq.Add(1)
		return storeErr("index update", err)
	}
	s.mu.Lock()
	mem()
	s.counts.total += w.counts.total
	s.counts.committed += w.counts.committed
	s.counts.unused += w.counts.unused
	s.counts.unusedBytes += w.counts.unusedBytes
	if w.uncommits > 0 {
		s.uncommits.Add(1)
	}
	if w.commits > 0 {
		s.commitSeq.Add(1)
	}
	s.wseq.Add(1)
	s.mu.Unlock()
	if later && len(w.gone) > removeBatch {
		s.removeLater(w.gone, s.commitSeq.Load())
	} else {
		s.removeBlobFiles(w.gone)
	}
	return nil
}

// indexWrite is what writeIndex did: what it adds to s.counts, the blobs
// no longer committed (their files go), and how many records it
// uncommitted or dropped, and committed.
type indexWrite struct {
	counts             blobCounts
	gone               []string
	uncommits, commits int
}

// writeIndex writes c in tx, key by key in order (neighbouring keys share
// pages). A bucket that loses most of its keys (a gc of 100,000 avatars
// drops ~99,000 avatars and ~297,000 blob records) is rebuilt with the
// keys it keeps instead: deleting them one by one cost seconds of seeks,
// node rewrites and rebalancing.
func (s *Store) writeIndex(tx *bolt.Tx, c *change, w *indexWrite) error {
	ids := make([]string, 0, len(c.avatars))
	dropped := 0
	for id, e := range c.avatars {
		ids = append(ids, id)
		if e == nil {
			dropped++
		}
	}
	slices.Sort(ids)
	av, raw, used := tx.Bucket(bucketAvatars), tx.Bucket(bucketRaw), tx.Bucket(bucketLastUsed)
	rebuilt := mostOf(dropped, len(s.avatars))
	if rebuilt {
		keep := func(k, _ []byte) bool {
			e, ok := c.avatars[string(k)]
			return !ok || e != nil
		}
		var err error
		if av, err = rebuildBucket(tx, bucketAvatars, keep); err != nil {
			return err
		}
		if raw, err = rebuildBucket(tx, bucketRaw, keep); err != nil {
			return err
		}
		if used, err = rebuildBucket(tx, bucketLastUsed, keep); err != nil {
			return err
		}
	}
	for _, id := range ids {
		e := c.avatars[id]
		if e == nil {
			if rebuilt {
				continue
			}
			if err := errors.Join(av.Delete([]byte(id)), raw.Delete([]byte(id)), used.Delete([]byte(id))); err != nil {
				return err
			}
			continue
		}
		v, err := encodeAvatar(c.full[id])
		if err != nil {
			return err
		}
		at := e.lastUsed.Load()
		if old := s.avatars[id]; at == 0 && old != nil {
			at = old.lastUsed.Load()
		}
		// An edit of the same version keeps its raw manifest.
		var rerr error
		if r, ok := c.raws[id]; ok && len(r) > 0 {
			rerr = raw.Put([]byte(id), r)
		} else if ok {
			rerr = raw.Delete([]byte(id))
		}
		if err := errors.Join(av.Put([]byte(id), v), rerr, used.Put([]byte(id), u64(uint64(at)))); err != nil {
			return err
		}
	}

	ds := make([]string, 0, len(c.blobs))
	dropped = 0
	for d, r := range c.blobs {
		ds = append(ds, d)
		if r == nil {
			dropped++
		}
	}
	slices.Sort(ds)
	bl := tx.Bucket(bucketBlobs)
	s.mu.RLock()
	recorded := s.counts.committed
	s.mu.RUnlock()
	rebuilt = mostOf(dropped, recorded)
	if rebuilt {
		// The records dropped are counted out as the rebuild passes them.
		var derr error
		keep := func(k, v []byte) bool {
			if r, ok := c.blobs[string(k)]; !ok || r != nil {
				return true
			}
			old, err := decodeBlob(v)
			if err != nil {
				derr = cmp.Or(derr, fmt.Errorf("blob %s: %w", k, err))
				return true
			}
			w.counts.add(old, -1)
			w.uncommits++
			if old.isCommitted() {
				w.gone = append(w.gone, string(k))
			}
			return false
		}
		var err error
		if bl, err = rebuildBucket(tx, bucketBlobs, keep); err != nil || derr != nil {
			return cmp.Or(derr, err)
		}
	}
	for _, d := range ds {
		r := c.blobs[d]
		if r == nil && rebuilt {
			continue // counted by the rebuild
		}
		// The record as the change read it (nothing wrote since: the
		// caller holds wmu), else as the index has it.
		old, read := c.old[d]
		had := read && old != blobRec{}
		var err error
		if !read {
			if old, had, err = readBlob(tx, d); err != nil {
				return err
			}
		}
		if had {
			w.counts.add(old, -1)
		}
		if r == nil {
			err = bl.Delete([]byte(d))
		} else {
			w.counts.add(*r, +1)
			err = bl.Put([]byte(d), r.encode())
		}
		if err != nil {
			return err
		}
		switch {
		case had && old.isCommitted() && (r == nil || !r.isCommitted()):
			w.gone = append(w.gone, d)
			w.uncommits++
		case had && r == nil:
			w.uncommits++
		case r != nil && r.isCommitted() && !(had && old.isCommitted()):
			w.commits++
		}
	}
	return nil
}

// mostOf reports whether dropping n of a bucket's about total keys is
// worth rebuilding it: more than half of them, and more than a few.
func mostOf(n, total int) bool { return n > removeBatch && 2*n > total }
