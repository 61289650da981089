package store

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
)

func statfsFree(dir string) (int64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return int64(st.Bavail) * int64(st.Bsize), nil
}

// EnsureSpace makes room for need more bytes, under the quota (MaxBytes,
// counting committed blobs) and on the disk (free space minus
// ReserveBytes), by evicting the least recently used unpinned avatars and
// committed blobs nothing has referenced for an hour. Leased blobs
// (Lease) are neither collected nor counted as freed, and an avatar whose
// every blob is leased is not evicted: it would free nothing. It plans
// first: when even evicting all of those would not be enough, it evicts
// nothing and fails with failedToDownloadAvatarAssets, reason
// insufficientStorage, phase store. need is the bytes still to be written
// (size minus Partial).
func (s *Store) EnsureSpace(need int64) (evicted []string, err error) {
	return s.EnsureSpaceKeeping(need)
}

// EnsureSpaceKeeping is EnsureSpace that does not evict the avatars keep
// (the one being loaded, whose old version may share blobs with the new).
func (s *Store) EnsureSpaceKeeping(need int64, keep ...string) (evicted []string, err error) {
	if need <= 0 {
		return nil, nil
	}
	free, err := s.freeFor(need)
	if err != nil {
		return nil, storeErr("free space", err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	quota, reserve := s.maxBytes.Load(), s.reserveBytes.Load()
	avail := free - reserve
	s.mu.RLock()
	used, unused := s.counts.total, s.counts.unused
	s.mu.RUnlock()
	enough := func(freed int64) bool {
		return (quota <= 0 || used-freed+need <= quota) && avail+freed >= need
	}
	if enough(0) {
		return nil, nil
	}
	c := s.newChange()
	defer c.close()
	var freed int64
	gone := func() {
		freed = 0
		for d, r := range c.blobs {
			if r != nil {
				continue
			}
			if old := c.old[d]; old.isCommitted() { // every record c changes was read
				freed += old.size
			}
		}
	}
	cutoff := s.now().Add(-orphanGrace).UnixNano()
	if tx := c.tx(); tx != nil && unused > 0 {
		c.fail(eachBlob(tx, func(d string, r blobRec) error {
			if r.refs == 0 && r.isCommitted() && r.committed < cutoff && !s.leased(d) {
				c.old[d], c.blobs[d] = r, nil
			}
			return nil
		}))
	}
	gone()
	skip := map[string]bool{}
	for _, id := range keep {
		skip[id] = true
	}
	for _, p := range s.lru() {
		if enough(freed) {
			break
		}
		if p.e.pinned || skip[p.id] || s.allLeased(s.digestsOf(c, p.id)) {
			continue
		}
		s.dropAvatar(c, p.id)
		s.collectDerefd(c)
		gone()
		evicted = append(evicted, p.id)
	}
	if !enough(freed) {
		return nil, noRoom(need, used-freed, quota, avail+freed, reserve, s.dir)
	}
	if err := s.apply(c); err != nil {
		return nil, err
	}
	if len(evicted) > 0 {
		s.log.Info("store: evicted avatars to make room", "need", need, "evicted", evicted, "freed", freed)
	}
	return evicted, nil
}

// CheckRoom refuses, before any byte of it is stored, an import stream of
// n bytes that could not fit: over the quota (MaxBytes) however much is
// evicted, or over the disk's free space above ReserveBytes (the stream is
// spooled before eviction can make room). It evicts nothing; EnsureSpace
// makes the room once the stream's new blobs are known.
func (s *Store) CheckRoom(n int64) error {
	quota, reserve := s.maxBytes.Load(), s.reserveBytes.Load()
	h := errs.HumanBytes
	if quota > 0 && n > quota {
		return &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Phase: errcode.PhaseStore,
			Reason: errcode.ReasonInsufficientStorage, Message: fmt.Sprintf(
				"store: the import is %s, more than the whole %s quota (store.max_bytes)", h(n), h(quota)),
			Hint: fmt.Sprintf("raise store.max_bytes (now %s; this import needs %s)", h(quota), h(n))}
	}
	free, err := s.freeFor(n)
	if err != nil {
		return storeErr("free space", err)
	}
	if n > free-reserve {
		return &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Phase: errcode.PhaseStore,
			Reason: errcode.ReasonInsufficientStorage, Message: fmt.Sprintf(
				"store: the import is %s; the disk has %s free above the %s reserve (store.reserve_bytes)",
				h(n), h(max(free-reserve, 0)), h(reserve)),
			Hint: fmt.Sprintf("free space on the disk of %s, or lower store.reserve_bytes (now %s)", s.dir, h(reserve))}
	}
	return nil
}

// freeFor is the disk's free space for a need of need bytes: when that
// is short (above the reserve) while Open's size check runs (it queues the
// strays of a crash in the middle of a gc) or the background remover still
// has files to remove, it waits for them, in that order, and reads it again.
func (s *Store) freeFor(need int64) (int64, error) {
	free, err := s.freeSpace(s.dir)
	if err == nil && need > free-s.reserveBytes.Load() {
		checking := s.waitSizeCheck()
		if s.waitRemovals() || checking {
			free, err = s.freeSpace(s.dir)
		}
	}
	return free, err
}

// allLeased reports whether every digest of ds is leased.
func (s *Store) allLeased(ds []string) bool {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	for _, d := range ds {
		if s.leases[d] == 0 {
			return false
		}
	}
	return len(ds) > 0
}

// SetLimits changes the quota (maxBytes, 0 = none) and the free space
// always left (reserveBytes), as Options.MaxBytes and Options.ReserveBytes
// do at Open: a reloaded configuration. They apply from the next
// EnsureSpace; a lowered quota evicts nothing until then.
func (s *Store) SetLimits(maxBytes, reserveBytes int64) {
	s.maxBytes.Store(maxBytes)
	s.reserveBytes.Store(reserveBytes)
}

// idEntry is an avatar's ID and entry, and its last use when listed.
type idEntry struct {
	id string
	e  *entry
	at int64
}

// lru returns the entries, least recently used first (ties by ID).
func (s *Store) lru() []idEntry {
	es := make([]idEntry, 0, len(s.avatars))
	for id, e := range s.avatars {
		es = append(es, idEntry{id, e, e.lastUsed.Load()})
	}
	slices.SortFunc(es, func(a, b idEntry) int {
		if a.at != b.at {
			return cmp.Compare(a.at, b.at)
		}
		return cmp.Compare(a.id, b.id)
	})
	return es
}

// KeepLRU keeps the n most recently used avatars and deletes the rest.
// Pinned avatars always stay and count toward n, so with n pinned avatars
// every unpinned one goes.
func (s *Store) KeepLRU(n int) (removed []string, err error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	es := s.lru()
	kept := 0
	for _, p := range es {
		if p.e.pinned {
			kept++
		}
	}
	var keep []idEntry
	for i := len(es) - 1; i >= 0; i-- {
		p := es[i]
		if p.e.pinned {
			keep = append(keep, p)
			continue
		}
		if kept < n {
			kept++
			keep = append(keep, p)
			continue
		}
		removed = append(removed, p.id)
	}
	if len(removed) == 0 {
		return nil, nil
	}
	slices.Sort(removed)
	if mostOf(len(removed), len(es)) { // a gc of most of the store (dropmost.go)
		if err := s.dropMost(removed, keep); err != nil {
			return nil, err
		}
		return removed, nil
	}
	c := s.newChange()
	defer c.close()
	c.later = true // a gc: its files go after the answer (remove.go)
	for _, id := range removed {
		s.dropAvatar(c, id)
	}
	if err := s.apply(c); err != nil {
		return nil, err
	}
	return removed, nil
}

// Stats are the store's counters.
type Stats struct {
	Entries      int   // avatars
	TotalBytes   int64 // committed blobs, each counted once
	MaxBytes     int64
	Blobs        int // committed blobs
	Pinned       int
	Damaged      int
	Stale        int
	FreeBytes    int64 // free on the store's file system (0 if unknown)
	FreeKnown    bool  // FreeBytes was read from the file system
	ReserveBytes int64
}

// Stats counts from memory (and asks the file system for FreeBytes).
func (s *Store) Stats() Stats {
	st := Stats{MaxBytes: s.maxBytes.Load(), ReserveBytes: s.reserveBytes.Load()}
	s.mu.RLock()
	st.Entries, st.TotalBytes, st.Blobs = len(s.avatars), s.counts.total, s.counts.committed
	for _, e := range s.avatars {
		if e.pinned {
			st.Pinned++
		}
		switch e.state {
		case stateCode(StateDamaged):
			st.Damaged++
		case stateCode(StateStale):
			st.Stale++
		}
	}
	s.mu.RUnlock()
	if free, err := s.freeSpace(s.dir); err == nil {
		st.FreeBytes, st.FreeKnown = free, true
	}
	return st
}

// noRoom says which limit an avatar does not fit under, even after every
// eviction: the quota (store.max_bytes), the disk above the reserve
// (store.reserve_bytes), or both, in human sizes, with the setting to
// change in the hint.
func noRoom(need, used, quota, avail, reserve int64, dir string) *errcode.Error {
	h := errs.HumanBytes
	var why, hint []string
	if quota > 0 && used+need > quota {
		why = append(why, fmt.Sprintf("the cache would hold %s of its %s quota (store.max_bytes)", h(used+need), h(quota)))
		hint = append(hint, fmt.Sprintf("raise store.max_bytes (now %s; this avatar needs %s)", h(quota), h(need)))
	}
	if avail < need {
		why = append(why, fmt.Sprintf("the disk has %s free above the %s reserve (store.reserve_bytes)", h(max(avail, 0)), h(reserve)))
		hint = append(hint, fmt.Sprintf("free space on the disk of %s, or lower store.reserve_bytes (now %s)", dir, h(reserve)))
	}
	return &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Phase: errcode.PhaseStore,
		Reason: errcode.ReasonInsufficientStorage,
		Message: fmt.Sprintf("store: %s more needed, but %s, even after evicting every unpinned avatar",
			h(need), strings.Join(why, " and ")),
		Hint: strings.Join(hint, "; ")}
}
