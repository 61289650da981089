package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"
	"weak"

	bolt "go.etcd.io/bbolt"
)

// Avatars are not held decoded in memory: 100,000 of them would take
// ~600 B each. An entry (store.go) holds what eviction, Stats and
// reference counting need; the avatar itself is decoded from the index
// when it is asked for, and the last maxHot decoded (Retrieve's working
// set) are kept in s.hot. Puts and edits put the new avatar there.
//
// A decoded avatar's *Manifest is the one its entry's weak pointer still
// reaches when anything holds it (a hot avatar, a caller's copy, the
// manager's views and trust verdicts), so that two reads of one version
// share their Manifest as they did when every avatar was in memory: the
// manager compares Manifest pointers to mean "the same version".
//
// A read outside wmu cannot tell which entry the record it read belongs
// to if apply wrote meanwhile: apply makes s.wseq odd while it writes
// (from before its transaction to after the maps are updated), and a read
// keeps its record only when s.wseq did not move around it; else it reads
// again, in the end under wmu.

// maxHot bounds s.hot.
var maxHot = 4096 // a variable for tests

// view is avatar id's entry and decoded avatar, shared (not to be
// modified), or nils when id is not cached. One read from the index
// joins the hot set.
func (s *Store) view(id string) (*entry, *Avatar) { return s.lookup(id, true) }

// peek is view that leaves the hot set as it is (and the avatar it
// decodes has a *Manifest of its own): for a walk over every avatar, such
// as the blob watcher's rescan, which would push Retrieve's working set
// out.
func (s *Store) peek(id string) (*entry, *Avatar) { return s.lookup(id, false) }

func (s *Store) lookup(id string, keep bool) (*entry, *Avatar) {
	s.mu.RLock()
	e, h := s.avatars[id], s.hot[id]
	s.mu.RUnlock()
	if e == nil || h != nil {
		return e, h
	}
	for range 3 {
		seq := s.wseq.Load()
		if seq&1 != 0 {
			continue
		}
		a, err := s.readRecord(id)
		s.mu.Lock()
		if s.wseq.Load() == seq {
			e, h = s.avatars[id], nil
			switch {
			case e == nil || err != nil:
			case keep:
				h = s.settle(id, e, a)
			case s.hot[id] != nil:
				h = s.hot[id]
			default:
				h = a
			}
			s.mu.Unlock()
			if e != nil && err != nil {
				s.log.Error("store: read avatar", "avatar", id, "err", err)
			}
			return e, h
		}
		s.mu.Unlock()
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	e, h, err := s.current(id) // (joins the hot set)
	if err != nil {
		s.log.Error("store: read avatar", "avatar", id, "err", err)
		return nil, nil
	}
	return e, h
}

// current is view for a caller holding wmu: no apply runs meanwhile.
func (s *Store) current(id string) (*entry, *Avatar, error) {
	e := s.avatars[id]
	if e == nil {
		return nil, nil, nil
	}
	s.mu.RLock()
	h := s.hot[id]
	s.mu.RUnlock()
	if h != nil {
		return e, h, nil
	}
	a, err := s.readRecord(id)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	h = s.settle(id, e, a)
	s.mu.Unlock()
	return e, h, nil
}

// settle makes a, just read for e, the hot avatar id, with the Manifest
// e's version already has when one is held. The caller holds mu for
// writing.
func (s *Store) settle(id string, e *entry, a *Avatar) *Avatar {
	if h := s.hot[id]; h != nil {
		return h
	}
	if m := e.mf.Value(); m != nil {
		a.Manifest = m
	} else {
		e.mf = weak.Make(a.Manifest)
	}
	s.hotPut(id, a)
	return a
}

// hotPut keeps a as the hot avatar id, dropping another (any) when there
// are maxHot. The caller holds mu for writing.
func (s *Store) hotPut(id string, a *Avatar) {
	if _, ok := s.hot[id]; !ok && len(s.hot) >= maxHot {
		for other := range s.hot { // map order: a random one
			delete(s.hot, other)
			break
		}
	}
	s.hot[id] = a
}

var errNoRecord = errors.New("avatar is in memory but not in the index")

// readRecord decodes avatar id from the index.
func (s *Store) readRecord(id string) (*Avatar, error) {
	var a Avatar
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketAvatars).Get([]byte(id))
		if v == nil {
			return errNoRecord
		}
		var err error
		a, err = decodeAvatar(id, v)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("avatar %q: %w", id, err)
	}
	return &a, nil
}

// walkChunk is how many avatars a walk decodes in one read transaction:
// a slow consumer never holds one open (a write that grows the index
// waits for every read transaction).
var walkChunk = 512 // a variable for tests

// Each calls yield with a copy of each cached avatar, by ID, until it
// returns false. It reads the index walkChunk avatars at a time and
// keeps none of them: a listing of 100,000 avatars holds one chunk.
func (s *Store) Each(yield func(*Avatar) bool) error {
	var after []byte
	for {
		var chunk []*Avatar
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketAvatars).Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); k != nil && bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(chunk) < walkChunk; k, v = c.Next() {
				a, err := decodeAvatar(string(k), v)
				if err != nil {
					return fmt.Errorf("avatar %q: %w", k, err)
				}
				chunk = append(chunk, &a)
			}
			return nil
		})
		if err != nil {
			return storeErr("read avatars", err)
		}
		if len(chunk) == 0 {
			return nil
		}
		after = []byte(chunk[len(chunk)-1].ID)
		s.mu.RLock()
		for i, a := range chunk {
			e := s.avatars[a.ID]
			if e == nil {
				chunk[i] = nil // removed since the read
				continue
			}
			if at := e.lastUsed.Load(); at != 0 {
				a.LastUsed = time.Unix(0, at)
			}
		}
		s.mu.RUnlock()
		for _, a := range chunk {
			if a != nil && !yield(a) {
				return nil
			}
		}
	}
}
