package manager

import (
	"slices"
	"sync"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// view is the part of an avatar's API form that is fixed for a version:
// built once, so that Retrieve only copies it.
type view struct {
	mf     *manifest.Manifest // the store shares one Manifest between copies
	assets []apitype.Asset
	size   int64
}

// viewCache holds one view per avatar ID, good while the store's avatar
// has the same *Manifest. Puts and deletes drop views to free them.
type viewCache struct {
	mu sync.RWMutex
	m  map[string]*view
}

func (c *viewCache) init() { c.m = map[string]*view{} }

func (c *viewCache) drop(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}

// dropAll is drop of each of ids, under one lock (a gc's 99,000).
func (c *viewCache) dropAll(ids []string) {
	c.mu.Lock()
	for _, id := range ids {
		delete(c.m, id)
	}
	c.mu.Unlock()
}

func (c *viewCache) reset() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}

func (m *Manager) viewOf(a *store.Avatar) *view {
	m.views.mu.RLock()
	v := m.views.m[a.ID]
	m.views.mu.RUnlock()
	if v != nil && v.mf == a.Manifest {
		return v
	}
	v = m.buildView(a)
	m.views.mu.Lock()
	if len(m.views.m) >= maxViews {
		for id := range m.views.m { // a random one: map order
			delete(m.views.m, id)
			break
		}
	}
	m.views.m[a.ID] = v
	m.views.mu.Unlock()
	return v
}

// maxViews bounds the view cache: Retrieve's working set, not the whole
// cache (a view holds each file's local path, ~1 KiB an avatar).
const maxViews = 4096

// peekView is a's cached view (shared: true), or one built and not kept.
func (m *Manager) peekView(a *store.Avatar) (v *view, shared bool) {
	m.views.mu.RLock()
	v = m.views.m[a.ID]
	m.views.mu.RUnlock()
	if v != nil && v.mf == a.Manifest {
		return v, true
	}
	return m.buildView(a), false
}

func (m *Manager) buildView(a *store.Avatar) *view {
	v := &view{mf: a.Manifest}
	if a.Manifest != nil {
		v.assets = make([]apitype.Asset, len(a.Manifest.Assets))
		for i, as := range a.Manifest.Assets {
			v.assets[i] = apitype.Asset{Path: as.Path, Size: as.Size, SHA256: as.SHA256, LocalPath: m.st.BlobPath(as.SHA256)}
			v.size += as.Size
		}
	}
	return v
}

// toAPI is the API form of a cached avatar. Its Assets are its own.
func (m *Manager) toAPI(a *store.Avatar) *apitype.Avatar { return m.apiForm(a, m.viewOf(a), true) }

// apiForm is a's API form from its view v; the Assets are copied when v
// is shared (cached).
func (m *Manager) apiForm(a *store.Avatar, v *view, shared bool) *apitype.Avatar {
	assets := v.assets
	if shared {
		assets = slices.Clone(v.assets)
	}
	st := apitype.State(a.State)
	if st == "" {
		st = apitype.StateReady
	}
	return &apitype.Avatar{
		AvatarID:  a.ID,
		Version:   a.Version,
		State:     st,
		SizeBytes: v.size,
		LastUsed:  a.LastUsed,
		Pinned:    a.Pinned,
		Source:    a.Source,
		Damaged:   slices.Clone(a.Damaged),
		Assets:    assets,
	}
}
