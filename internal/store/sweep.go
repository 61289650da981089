package store

import (
	"errors"
	"os"
	"path/filepath"

	"github.com/assetd/assetd/internal/manifest"
)

// Leftovers are bytes the store holds that no cached avatar uses: partial
// downloads (ingest/), and committed blobs no avatar references (a load
// that failed after committing some of its files; kept orphanGrace for
// its retry).
type Leftovers struct {
	Partials     int
	PartialBytes int64
	Unused       int
	UnusedBytes  int64
}

// Leftovers counts them: the unused blobs from memory, the partials from
// one listing of ingest/.
func (s *Store) Leftovers() Leftovers {
	var l Leftovers
	s.mu.RLock()
	l.Unused, l.UnusedBytes = s.counts.unused, s.counts.unusedBytes
	s.mu.RUnlock()
	ents, err := os.ReadDir(s.path("ingest"))
	if err != nil {
		return l
	}
	for _, ent := range ents {
		l.Partials++
		if fi, err := ent.Info(); err == nil && fi.Mode().IsRegular() {
			l.PartialBytes += fi.Size()
		}
	}
	return l
}

// Sweep removes, whatever their age, the partial downloads no writer has
// open and the unused blobs no load has leased, and returns what it
// removed: `assetd gc` and `assetd rm --all`. A partial that a load opens
// again afterwards starts from 0; a load in flight loses nothing.
func (s *Store) Sweep() (Leftovers, error) {
	var l Leftovers
	s.wmu.Lock()
	c := s.newChange()
	defer c.close()
	c.later = true // its files go after the answer (remove.go)
	s.mu.RLock()
	unused := s.counts.unused
	s.mu.RUnlock()
	if tx := c.tx(); tx != nil && unused > 0 {
		c.fail(eachBlob(tx, func(d string, r blobRec) error {
			if r.refs == 0 && r.isCommitted() && !s.leased(d) {
				c.old[d], c.blobs[d] = r, nil
				l.Unused++
				l.UnusedBytes += r.size
			}
			return nil
		}))
	}
	var err error
	if len(c.blobs) > 0 || c.err != nil {
		err = s.apply(c)
	}
	c.close()
	s.wmu.Unlock()
	if err != nil {
		return Leftovers{}, err
	}

	ents, err := os.ReadDir(s.path("ingest"))
	if err != nil {
		return l, storeErr("list ingests", err)
	}
	for _, ent := range ents {
		name := ent.Name()
		valid := manifest.ValidDigest(name)
		if valid && !s.locks.tryLock(name) {
			continue // a writer has it open
		}
		var size int64
		if fi, err := ent.Info(); err == nil && fi.Mode().IsRegular() {
			size = fi.Size()
		}
		err := os.RemoveAll(filepath.Join(s.path("ingest"), name))
		if valid {
			s.locks.unlock(name)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("store: remove partial download", "name", name, "err", err)
			continue
		}
		l.Partials++
		l.PartialBytes += size
	}
	return l, nil
}
