package manager

import (
	"context"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/store"
)

// Source values of a cached avatar.
const (
	SourceOrigin = "origin"
	SourceImport = "import"
)

// LoadOptions tune one caller's load.
type LoadOptions struct {
	// Progress gets every event of this load, in order, from the caller's
	// goroutine: first the load's current progress, last one completed or
	// failed event. It must not block for long.
	Progress   func(apitype.Event)
	Background bool // preload or refresh: waits behind interactive downloads
	Pin        bool // keep the avatar through quota eviction and ClearLRU
}

// Load returns the avatar id, downloading what the cache lacks. It joins
// the load of id in flight, if any. ctx ends only this caller's wait: the
// load goes on for its other callers (and to fill the cache) until
// CancelLoading, CancelAll or Close. An invalid ID fails at once, with no
// event.
func (m *Manager) Load(ctx context.Context, id string, o LoadOptions) (*apitype.Avatar, error) {
	a, _, err := m.await(ctx, id, o, false)
	return a, err
}

// await is Load's body: the fresh cached avatar, else the outcome of the
// flight of id, waited for. With revalidate it asks the origin even when
// the cached avatar is fresh by its max-age (a conditional request: an
// unchanged avatar costs one 304). It also returns, when the origin could
// not be reached and the cached avatar was served stale, why.
func (m *Manager) await(ctx context.Context, id string, o LoadOptions, revalidate bool) (a *apitype.Avatar, stale error, err error) {
	if err := validateID(id); err != nil {
		return nil, nil, err
	}
	if !revalidate {
		if a := m.cacheHit(id, o.Pin); a != nil {
			if o.Progress != nil {
				ev := completedEvent(a)
				ev.FromCache = true
				o.Progress(ev)
			}
			return a, nil, nil
		}
	}
	w := newWaiter()
	fl, err := m.join(ownerOf(ctx), id, o, w, revalidate)
	if err != nil {
		return nil, nil, err
	}
	return fl.follow(ctx, w, o.Progress)
}

// Start starts the load of id, or joins the one in flight, without
// waiting (?wait=false). When the avatar is cached, intact and fresh, it
// returns it as cached and starts nothing. ctx only names the caller
// (caller.FromContext), whose caps the load counts in.
func (m *Manager) Start(ctx context.Context, id string, o LoadOptions) (inFlight apitype.Load, cached *apitype.Avatar, err error) {
	if err := validateID(id); err != nil {
		return apitype.Load{}, nil, err
	}
	if a := m.cacheHit(id, o.Pin); a != nil {
		return apitype.Load{}, a, nil
	}
	fl, err := m.join(ownerOf(ctx), id, o, nil, false)
	if err != nil {
		return apitype.Load{}, nil, err
	}
	return fl.snapshot(), nil, nil
}

// Preload loads id as background work and pins it (duty.Loader). A cached
// avatar still fresh by its max-age costs no request. When the origin
// cannot be reached, the cached avatar stays served (stale) and Preload
// returns the transient error, so that the preloader tries again later.
func (m *Manager) Preload(ctx context.Context, id string) error {
	return m.background(ctx, id, false)
}

// Refresh is Preload that revalidates the cached avatar with the origin
// even when it is fresh by its max-age: a conditional request, which for
// an unchanged avatar is one 304 and no download (duty.Loader).
func (m *Manager) Refresh(ctx context.Context, id string) error {
	return m.background(ctx, id, true)
}

func (m *Manager) background(ctx context.Context, id string, revalidate bool) error {
	_, stale, err := m.await(ctx, id, LoadOptions{Background: true, Pin: true}, revalidate)
	if err != nil {
		return err
	}
	return stale
}

// freshCached is the cached avatar when a load needs no request: it is
// ready, intact, trusted, and imported or still fresh by its max-age.
func (m *Manager) freshCached(id string, pin bool) *apitype.Avatar {
	a, ok := m.st.Get(id)
	if !ok || a.Manifest == nil || (a.State != store.StateReady && a.State != "") {
		return nil
	}
	if a.Source != SourceImport && (a.MaxAge <= 0 || !m.now().Before(a.FetchedAt.Add(a.MaxAge))) {
		return nil
	}
	if m.trust.isUntrusted(a) {
		return nil
	}
	if len(m.st.CheckAvatar(id)) > 0 {
		return nil
	}
	if pin && !a.Pinned {
		if err := m.st.SetPinned(id, true); err == nil {
			a.Pinned = true
		}
	}
	m.st.Touch(id)
	out := m.toAPI(a)
	out.LastUsed = m.now()
	return out
}

// cacheHit is freshCached, counted and logged as a load answered from
// the cache with no request.
func (m *Manager) cacheHit(id string, pin bool) *apitype.Avatar {
	a := m.freshCached(id, pin)
	if a == nil {
		return nil
	}
	m.countResult(nil)
	m.log.Info("loaded", "avatar", a.AvatarID, "version", a.Version, "bytes", a.SizeBytes,
		"downloaded", 0, "took", time.Duration(0), "from", "cache")
	return a
}
