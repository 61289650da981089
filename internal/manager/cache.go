package manager

import (
	"context"
	"sort"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/store"
)

// Retrieve returns the cached avatar id with each file's local path,
// without any request. It fails with avatarAssetMissing: reason notCached
// (404) when id is not cached, reason damaged (409) when one of its files
// is missing, is not a regular file, has the wrong size or failed a
// verify, reason untrusted (409) when its manifest is signed by no key of
// origin.trusted_keys in force (the keys changed since it was fetched).
// Every call checks every file (store.CheckAvatar: an fstatat each, or
// the store's watch of the blob directory proving nothing changed it
// since one): a file truncated in place a moment ago is found. It never
// downloads:
// files it finds missing are recorded (state damaged, a state event);
// dropping them and healing are left to Verify, the scrub and the blob
// watcher, and to the next load.
func (m *Manager) Retrieve(id string) (*apitype.Avatar, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	a, ok := m.st.Get(id)
	if !ok || a.Manifest == nil {
		return nil, notCached(id)
	}
	if a.State == store.StateDamaged {
		return nil, damagedErr(id, a.Damaged)
	}
	if m.trust.isUntrusted(a) {
		return nil, untrustedErr(id)
	}
	if bad := m.st.CheckAvatar(id); len(bad) > 0 {
		if marked, err := m.st.MarkDamaged(id, a.Version, bad); err != nil {
			m.log.Warn("could not record damage", "avatar", id, "err", err)
		} else if marked {
			m.log.Warn("avatar damaged", "avatar", id, "files", bad)
			m.stateEvent(id, apitype.StateDamaged, damagedErr(id, bad))
		}
		return nil, damagedErr(id, bad)
	}
	m.st.Touch(id)
	out := m.toAPI(a)
	out.LastUsed = m.now()
	return out, nil
}

// damage records that the files paths of avatar id are missing or
// damaged. It reports whether a re-fetch of id started.
func (m *Manager) damage(id string, paths []string) bool {
	a, ok := m.st.Get(id)
	if !ok || a.Manifest == nil {
		return false
	}
	bad := make(map[string]bool, len(paths))
	for _, p := range paths {
		bad[p] = true
	}
	digests := map[string]bool{}
	for _, as := range a.Manifest.Assets {
		if bad[as.Path] {
			digests[as.SHA256] = true
		}
	}
	return m.dropBlobs(id, digests)
}

// dropBlobs removes damaged blobs from the store, so that the next load
// fetches them again; every avatar that used one becomes damaged and is
// announced (and, with SelfHeal, re-fetched). It reports whether a
// re-fetch of id started.
func (m *Manager) dropBlobs(id string, digests map[string]bool) bool {
	affected := map[string]bool{id: true}
	for d := range digests {
		for _, other := range m.st.AvatarsUsing(d) {
			affected[other] = true
		}
		if err := m.st.RemoveBlob(d); err != nil {
			m.log.Warn("could not remove a damaged blob", "digest", d, "err", err)
		}
	}
	healing := false
	for other := range affected {
		cur, ok := m.st.Get(other)
		if !ok {
			continue
		}
		if m.announceDamaged(other, cur.Damaged) && other == id {
			healing = true
		}
	}
	return healing
}

// announceDamaged announces damage the store has recorded and, with
// SelfHeal, starts a background re-fetch. It reports whether one started.
func (m *Manager) announceDamaged(id string, paths []string) bool {
	m.log.Warn("avatar damaged", "avatar", id, "files", paths)
	m.stateEvent(id, apitype.StateDamaged, damagedErr(id, paths))
	if !m.opts.SelfHeal {
		return false
	}
	m.mu.Lock()
	_, running := m.flights[id]
	m.mu.Unlock()
	_, err := m.join(daemonOwner, id, LoadOptions{Background: true}, nil, false)
	if err == nil && !running {
		m.log.Info("healing: fetching the damaged files again", "avatar", id)
	}
	return err == nil
}

// Clear removes the avatar id from the cache, after cancelling its load.
// Files another avatar uses stay. avatarAssetMissing (notCached) when
// there was nothing to remove.
func (m *Manager) Clear(id string) error {
	if err := validateID(id); err != nil {
		return err
	}
	m.mu.Lock()
	loading := m.flights[id] != nil
	m.mu.Unlock()
	if err := m.cancelAndWait(context.Background(), []string{id}); err != nil {
		return avatarErr(id, err)
	}
	_, ok := m.st.Get(id)
	if !ok {
		if loading {
			return nil
		}
		return notCached(id)
	}
	err := m.st.Delete(id)
	m.views.drop(id)
	m.trust.forgetID(id)
	if err != nil {
		return storeErr(id, "", err)
	}
	m.log.Info("removed", "avatar", id)
	return nil
}

// ClearAll cancels every load and removes every cached avatar; it returns
// the IDs removed.
func (m *Manager) ClearAll() ([]string, error) {
	if err := m.cancelAndWait(context.Background(), nil); err != nil {
		return nil, errs.From(err)
	}
	list := m.st.List()
	ids := make([]string, 0, len(list))
	for _, a := range list {
		ids = append(ids, a.ID)
	}
	err := m.st.DeleteAll()
	m.views.reset()
	m.trust.forget(nil)
	if err != nil {
		return nil, storeErr("", "", err)
	}
	m.logRemoved("removed every avatar", ids)
	if err := m.sweep(); err != nil {
		return ids, err
	}
	return ids, nil
}

// ClearLRU keeps the keep most recently used avatars (and every pinned
// one) and removes the rest; it returns the IDs removed.
func (m *Manager) ClearLRU(keep int) ([]string, error) {
	if keep < 0 {
		return nil, errs.New(errcode.BadRequest, errcode.PhaseLocal, "keep must be 0 or more, not %d", keep)
	}
	removed, err := m.st.KeepLRU(keep)
	m.views.dropAll(removed)
	if err != nil {
		return removed, storeErr("", "", err)
	}
	m.logRemoved("removed the least recently used avatars", removed)
	if err := m.sweep(); err != nil {
		return removed, err
	}
	if removed == nil {
		removed = []string{}
	}
	return removed, nil
}

// CacheSize is the bytes of the cached avatar id (the sum of its files).
func (m *Manager) CacheSize(id string) (int64, error) {
	if err := validateID(id); err != nil {
		return 0, err
	}
	a, ok := m.st.Get(id)
	if !ok {
		return 0, notCached(id)
	}
	return a.Size(), nil
}

// AllCacheSize is the bytes of every distinct file in the cache.
func (m *Manager) AllCacheSize() int64 { return m.st.Stats().TotalBytes }

// Cached lists the cached avatars with their sizes (duty.Verifier).
func (m *Manager) Cached() map[string]int64 {
	list := m.st.List()
	out := make(map[string]int64, len(list))
	for _, a := range list {
		out[a.ID] = a.Size()
	}
	return out
}

// Stats describes the cache and the loads in flight.
func (m *Manager) Stats() apitype.Stats {
	s, l := m.st.Stats(), m.st.Leftovers()
	m.mu.Lock()
	n := len(m.flights)
	m.mu.Unlock()
	return apitype.Stats{
		TotalEntries:  s.Entries,
		TotalSize:     s.TotalBytes,
		MaxSize:       s.MaxBytes,
		Pinned:        s.Pinned,
		Damaged:       s.Damaged,
		Stale:         s.Stale,
		Blobs:         s.Blobs,
		LoadsInFlight: n,
		ReserveBytes:  s.ReserveBytes,
		FreeBytes:     s.FreeBytes,
		UnusedBlobs:   l.Unused,
		UnusedBytes:   l.UnusedBytes,
		Partials:      l.Partials,
		PartialBytes:  l.PartialBytes,
	}
}

// List returns every cached avatar and every load in flight, by ID. It
// holds the whole answer: GET /v1/avatars streams EachCached instead.
func (m *Manager) List() apitype.List {
	out := apitype.List{Avatars: []apitype.Avatar{}, Loads: m.Loads()}
	m.EachCached(func(a *apitype.Avatar) bool {
		out.Avatars = append(out.Avatars, *a)
		return true
	})
	return out
}

// EachCached calls yield with the API form of each cached avatar, by ID,
// one at a time, until yield returns false: a listing of a large cache
// holds one chunk of avatars at a time (store.Each). The views it builds
// are not kept (the view cache is for Retrieve's working set, not for
// every avatar listed), nor are the avatars it reads (the store's are).
func (m *Manager) EachCached(yield func(*apitype.Avatar) bool) {
	if err := m.st.Each(func(a *store.Avatar) bool {
		v, shared := m.peekView(a)
		return yield(m.apiForm(a, v, shared))
	}); err != nil {
		m.log.Error("list avatars", "err", err)
	}
}

// Loads returns every load in flight, by ID.
func (m *Manager) Loads() []apitype.Load {
	m.mu.Lock()
	fls := make([]*flight, 0, len(m.flights))
	for _, fl := range m.flights {
		fls = append(fls, fl)
	}
	m.mu.Unlock()
	out := make([]apitype.Load, 0, len(fls))
	for _, fl := range fls {
		out = append(out, fl.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].AvatarID < out[j].AvatarID })
	return out
}

// SetPinned pins or unpins the cached avatar id. Pinning an avatar that is
// loading pins it when the load stores it.
func (m *Manager) SetPinned(id string, pinned bool) error {
	if err := validateID(id); err != nil {
		return err
	}
	m.mu.Lock()
	if fl := m.flights[id]; fl != nil {
		fl.pin.Store(pinned)
	}
	_, loading := m.flights[id]
	m.mu.Unlock()
	if _, ok := m.st.Get(id); !ok {
		if loading {
			return nil
		}
		return notCached(id)
	}
	cur, _ := m.st.Get(id)
	if err := m.st.SetPinned(id, pinned); err != nil {
		return storeErr(id, "", err)
	}
	if cur != nil && cur.Pinned != pinned {
		if pinned {
			m.log.Info("pinned", "avatar", id)
		} else {
			m.log.Info("unpinned", "avatar", id)
		}
	}
	return nil
}

// Unpin lets an avatar that left the preload list be evicted (duty.Loader).
func (m *Manager) Unpin(id string) error {
	err := m.SetPinned(id, false)
	if errs.CodeOf(err) == errcode.AvatarAssetMissing {
		return nil
	}
	return err
}

// PinCached pins id if it is cached, without any request, and says whether
// it was (duty.Loader: the first load of a preloaded avatar while
// background work is held).
func (m *Manager) PinCached(id string) (bool, error) {
	if _, ok := m.st.Get(id); !ok {
		return false, nil
	}
	if err := m.SetPinned(id, true); err != nil {
		if errs.CodeOf(err) == errcode.AvatarAssetMissing {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// sweep removes the partial downloads no load is using and the blobs no
// avatar uses and no load has leased: gc and rm --all leave no leftovers.
func (m *Manager) sweep() error {
	l, err := m.st.Sweep()
	if l.Partials+l.Unused > 0 {
		m.log.Info("removed partial downloads and unused files", "partials", l.Partials,
			"partial_bytes", l.PartialBytes, "unused_files", l.Unused, "unused_bytes", l.UnusedBytes)
	}
	if err != nil {
		return storeErr("", "", err)
	}
	return nil
}

// logRemoved logs the avatars an operation removed, if any: how many, and
// the first maxLoggedIDs of them (a gc of 100,000 avatars made a line of
// 1.3 MB, which the journal splits at 48 KiB, and took 13 ms to format).
func (m *Manager) logRemoved(msg string, ids []string) {
	if len(ids) > 0 {
		m.log.Info(msg, "count", len(ids), "avatars", ids[:min(len(ids), maxLoggedIDs)])
	}
}

// maxLoggedIDs bounds the IDs of one log line.
const maxLoggedIDs = 100
