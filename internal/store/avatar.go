package store

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/manifest"
)

// State is an avatar's condition in the cache.
type State string

// The states of a cached avatar.
const (
	StateReady   State = "ready"   // every blob committed, manifest fresh or not yet checked
	StateStale   State = "stale"   // served, but due for revalidation
	StateDamaged State = "damaged" // some blobs are missing or corrupt (Damaged lists them)
)

// Avatar is one cached avatar: its current version and what the store
// knows about it. Manifest is shared between copies and must not be
// modified.
type Avatar struct {
	ID, Version string
	Manifest    *manifest.Manifest
	// RawManifest is the manifest as the origin sent it, given to Put.
	// Get and List leave it nil: it stays in the index, out of memory
	// (a signed document per avatar), and RawManifest reads it.
	RawManifest         []byte
	ManifestURL         string
	ETag                string
	Source              string // "origin" or "import"
	Pinned              bool
	State               State
	Damaged             []string // asset paths found missing/damaged
	LastUsed, FetchedAt time.Time
	MaxAge              time.Duration
}

// Size is the sum of the asset sizes of the current version.
func (a *Avatar) Size() int64 {
	if a.Manifest == nil {
		return 0
	}
	return a.Manifest.TotalSize()
}

// Get returns a copy of the cached avatar id.
func (s *Store) Get(id string) (*Avatar, bool) {
	e, h := s.view(id)
	if h == nil {
		return nil, false
	}
	a := *h
	if at := e.lastUsed.Load(); at != 0 {
		a.LastUsed = time.Unix(0, at)
	}
	if a.Damaged != nil {
		a.Damaged = slices.Clone(a.Damaged)
	}
	return &a, true
}

// List returns copies of every cached avatar, sorted by ID (read from the
// index: see Each for a walk that holds one chunk at a time).
func (s *Store) List() []*Avatar {
	var out []*Avatar
	if err := s.Each(func(a *Avatar) bool { out = append(out, a); return true }); err != nil {
		s.log.Error("store: list avatars", "err", err)
	}
	return out
}

// IDs returns the IDs of every cached avatar, sorted: for a walk over a
// large cache that Gets one avatar at a time instead of copying all.
func (s *Store) IDs() []string {
	s.mu.RLock()
	ids := make([]string, 0, len(s.avatars))
	for id := range s.avatars {
		ids = append(ids, id)
	}
	s.mu.RUnlock()
	sort.Strings(ids)
	return ids
}

// Put makes a.Version (a.Manifest.Version when empty) the current version
// of avatar a.ID. Every blob of a.Manifest must be committed, else Put
// fails and nothing changes: the old version is served until then. Each
// distinct digest of the new version gains a reference and each of the
// old one loses one; blobs left with none are deleted (record in the same
// transaction, file right after). An empty State is ready; a zero LastUsed
// keeps the old one, or is now for a new avatar. Put never unpins (an
// avatar pinned before stays pinned); SetPinned does. The store keeps
// a.Manifest and a.RawManifest: do not modify them afterwards.
func (s *Store) Put(a *Avatar) error {
	if err := manifest.ValidateID(a.ID); err != nil {
		return err
	}
	if a.Manifest == nil {
		return fmt.Errorf("store: put %s: no manifest", a.ID)
	}
	c := *a
	if c.Version == "" {
		c.Version = c.Manifest.Version
	}
	if c.State == "" {
		c.State = StateReady
	}
	c.Damaged = slices.Clone(c.Damaged)
	c.RawManifest, c.LastUsed = nil, time.Time{} // in the index only; in the entry
	e := newEntry(&c)
	digests := distinctDigests(c.Manifest.Assets)
	for _, d := range digests {
		if !manifest.ValidDigest(d) {
			return badDigest(d)
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ch := s.newChange()
	defer ch.close()
	var missing []string
	for _, d := range digests {
		if r, ok := ch.indexed(d); !ok || !r.isCommitted() {
			missing = append(missing, d)
		}
	}
	if ch.err != nil {
		return storeErr("index read", ch.err)
	}
	if len(missing) > 0 {
		return &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Phase: errcode.PhaseStore, AvatarID: a.ID,
			Transient: true, Message: fmt.Sprintf("store: version %s: %d blobs are not committed (%s)",
				c.Version, len(missing), strings.Join(missing[:min(len(missing), 3)], ", "))}
	}
	old := s.avatars[a.ID]
	if old != nil && old.pinned && !e.pinned {
		c.Pinned, e.pinned = true, true
	}
	switch {
	case !a.LastUsed.IsZero():
		e.lastUsed.Store(a.LastUsed.UnixNano())
	case old == nil:
		e.lastUsed.Store(s.now().UnixNano())
	}
	for _, d := range digests {
		s.ref(ch, d, +1)
	}
	if old != nil {
		for _, d := range s.digestsOf(ch, a.ID) {
			s.ref(ch, d, -1)
		}
	}
	ch.avatars[a.ID] = e
	ch.full[a.ID] = &c
	ch.raws[a.ID] = a.RawManifest
	return s.apply(ch)
}

// RawManifest returns the manifest of avatar id's current version as the
// origin sent it (Put's RawManifest), read from the index; nil when id is
// not cached or was put without one.
func (s *Store) RawManifest(id string) ([]byte, error) {
	var raw []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		raw = bytes.Clone(tx.Bucket(bucketRaw).Get([]byte(id)))
		return nil
	})
	if err != nil {
		return nil, storeErr("read manifest", err)
	}
	return raw, nil
}

// Delete removes avatar id. Its blobs that other avatars still reference
// stay. An unknown id is avatarAssetMissing, reason notCached.
func (s *Store) Delete(id string) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.avatars[id] == nil {
		return notCached(id)
	}
	c := s.newChange()
	defer c.close()
	s.dropAvatar(c, id)
	return s.apply(c)
}

// DeleteAll removes every avatar and every committed blob, referenced or
// not, but leased ones (which stay as orphans). Partial ingests stay.
func (s *Store) DeleteAll() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	c := s.newChange()
	defer c.close()
	c.later = true // rm --all: its files go after the answer (remove.go)
	for id := range s.avatars {
		c.avatars[id] = nil
	}
	// Every reference goes with the avatars: the records go, but leased
	// blobs', which stay as unreferenced orphans.
	if tx := c.tx(); tx != nil {
		c.fail(eachBlob(tx, func(d string, r blobRec) error {
			c.old[d] = r
			switch {
			case !s.leased(d):
				c.blobs[d] = nil
			case r.refs != 0:
				r.refs = 0
				c.blobs[d] = &r
			}
			return nil
		}))
	}
	return s.apply(c)
}

// Touch records that avatar id was used now. It only updates memory; Flush
// (and Close) write it to the index.
func (s *Store) Touch(id string) {
	now := s.now().UnixNano()
	s.mu.RLock()
	if e := s.avatars[id]; e != nil {
		e.lastUsed.Store(now)
		e.dirty.Store(true)
		s.dirty.Store(true)
	}
	s.mu.RUnlock()
}

// edit replaces avatar id's entry by a copy changed by f.
func (s *Store) edit(id string, f func(a *Avatar)) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old, cur, err := s.current(id)
	if err != nil {
		return storeErr("read avatar", err)
	}
	if old == nil {
		return notCached(id)
	}
	a := *cur
	a.Damaged = slices.Clone(a.Damaged)
	f(&a)
	c := s.newChange()
	defer c.close()
	c.avatars[id], c.full[id] = s.with(old, &a), &a
	return s.apply(c)
}

// SetPinned pins or unpins avatar id. Pinned avatars are never evicted.
func (s *Store) SetPinned(id string, pinned bool) error {
	return s.edit(id, func(a *Avatar) { a.Pinned = pinned })
}

// SetState sets avatar id's state and damaged asset paths (kept only for
// StateDamaged).
func (s *Store) SetState(id string, st State, damaged []string) error {
	return s.edit(id, func(a *Avatar) {
		a.State, a.Damaged = st, nil
		if st == StateDamaged {
			a.Damaged = slices.Clone(damaged)
		}
	})
}

// MarkDamaged records that the files paths of version of avatar id were
// found missing or damaged, adding them to Damaged. It changes nothing,
// and reports false, when id is not cached or its version is another
// (a load replaced it since the check). The blobs stay indexed: dropping
// them (RemoveBlob) is for whoever verifies.
func (s *Store) MarkDamaged(id, version string, paths []string) (bool, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	old, cur, err := s.current(id)
	if err != nil {
		return false, storeErr("read avatar", err)
	}
	if old == nil || cur.Version != version {
		return false, nil
	}
	a := *cur
	if a.State != StateDamaged {
		a.Damaged = nil
	}
	a.State = StateDamaged
	a.Damaged = slices.Clone(a.Damaged)
	for _, p := range paths {
		if !slices.Contains(a.Damaged, p) {
			a.Damaged = append(a.Damaged, p)
		}
	}
	c := s.newChange()
	defer c.close()
	c.avatars[id], c.full[id] = s.with(old, &a), &a
	return true, s.apply(c)
}

// Revalidated records a 304 answer: the avatar is fresh again as of at,
// with etag and maxAge. Its state becomes ready unless it is damaged (a
// 304 does not repair files).
func (s *Store) Revalidated(id, etag string, maxAge time.Duration, at time.Time) error {
	return s.edit(id, func(a *Avatar) {
		a.ETag, a.MaxAge, a.FetchedAt = etag, maxAge, at
		if a.State != StateDamaged {
			a.State = StateReady
		}
	})
}

// AvatarsUsing returns the IDs of the avatars whose current version uses
// digest, sorted.
// It walks the index: a blob watcher's question, not a hot path.
func (s *Store) AvatarsUsing(digest string) []string {
	if !manifest.ValidDigest(digest) {
		return nil
	}
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		ids, err = avatarsUsing(tx, digest)
		return err
	})
	if err != nil {
		s.log.Error("store: find the avatars using a blob", "digest", digest, "err", err)
	}
	return ids
}
