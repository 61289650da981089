package store

import (
	"errors"
	"os"
	"sync"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// change is one transaction's worth of index edits, applied to bbolt first
// and to memory after. Callers hold s.wmu from building it to applying it.
type change struct {
	avatars map[string]*entry   // nil value: delete the avatar
	full    map[string]*Avatar  // the avatar of each entry of avatars
	blobs   map[string]*blobRec // nil value: delete the record
	derefd  map[string]bool     // blobs that lost a reference
	raws    map[string][]byte   // raw manifests of new versions (nil: none)
}

func newChange() *change {
	return &change{avatars: map[string]*entry{}, full: map[string]*Avatar{}, blobs: map[string]*blobRec{},
		derefd: map[string]bool{}, raws: map[string][]byte{}}
}

// blob is the record of d as the change has it so far.
func (s *Store) blob(c *change, d string) (blobRec, bool) {
	if r, ok := c.blobs[d]; ok {
		if r == nil {
			return blobRec{}, false
		}
		return *r, true
	}
	r, ok := s.blobs[d]
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

// dropAvatar removes id's references and the avatar.
func (s *Store) dropAvatar(c *change, id string) {
	if e := s.avatars[id]; e != nil {
		for _, d := range e.digests {
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
	s.wseq.Add(1) // odd until the maps are updated: readers outside wmu retry (hot.go)
	err := s.db.Update(func(tx *bolt.Tx) error {
		av, raw, used := tx.Bucket(bucketAvatars), tx.Bucket(bucketRaw), tx.Bucket(bucketLastUsed)
		for id, e := range c.avatars {
			if e == nil {
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
		bl := tx.Bucket(bucketBlobs)
		for d, r := range c.blobs {
			var err error
			if r == nil {
				err = bl.Delete([]byte(d))
			} else {
				err = bl.Put([]byte(d), r.encode())
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.wseq.Add(1)
		return storeErr("index update", err)
	}
	var gone []string
	s.mu.Lock()
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
	for d, r := range c.blobs {
		old, had := s.blobs[d]
		if had && old.isCommitted() {
			s.total -= old.size
		}
		if r == nil {
			delete(s.blobs, d)
			if had && old.isCommitted() {
				gone = append(gone, d)
			}
			continue
		}
		if r.isCommitted() {
			s.total += r.size
		} else if had && old.isCommitted() {
			gone = append(gone, d)
		}
		s.blobs[d] = *r
	}
	s.wseq.Add(1)
	s.mu.Unlock()
	s.removeBlobFiles(gone)
	return nil
}

// removeBlobFiles deletes the files of blobs that are no longer committed.
// Many (a gc of 100,000 avatars removes 300,000) are unlinked by several
// workers: each unlink waits on the file system's journal more than on a CPU.
func (s *Store) removeBlobFiles(ds []string) { s.removeBlobFilesUntil(ds, nil) }

// removeBlobFilesUntil is removeBlobFiles that stops early when stop is
// closed (the files left are strays the next Open removes).
func (s *Store) removeBlobFilesUntil(ds []string, stop <-chan struct{}) {
	workers := max(min(len(ds)/removeBatch, maxRemovers), 1)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(ds); i += workers {
				select {
				case <-stop:
					return
				default:
				}
				s.removeBlobFile(ds[i])
			}
		})
	}
	wg.Wait()
}

// Removals of more than removeBatch files get a worker per removeBatch,
// up to maxRemovers.
const (
	removeBatch = 256
	maxRemovers = 8
)

// removeBlobFile deletes the file of a blob that is no longer committed.
// A writer holding the digest will commit it again (rename over whatever
// is there), so the file is left to it; the next Open deletes a file that
// nothing indexes.
func (s *Store) removeBlobFile(d string) {
	if !s.locks.tryLock(d) {
		return
	}
	defer s.locks.unlock(d)
	s.mu.RLock()
	r, ok := s.blobs[d]
	s.mu.RUnlock()
	if ok && r.isCommitted() {
		return
	}
	// Relative to the open blob directory: no path walk per file. What
	// unlink refuses (a directory) is left to os.Remove.
	err := unix.Unlinkat(s.blobFD, d, 0)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		err = os.Remove(s.BlobPath(d))
	}
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("store: remove blob", "digest", d, "err", err)
	}
}
