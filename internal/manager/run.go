package manager

import (
	"context"
	"strings"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/store"
)

// run is the goroutine of one flight.
func (m *Manager) run(fl *flight) {
	var a *apitype.Avatar
	err := m.waitTurn(fl)
	if err == nil {
		a, err = m.fetchVersion(fl)
	}
	var e *errcode.Error
	if err != nil {
		if context.Cause(fl.ctx) != nil {
			e = cancelledErr(fl.id)
			e.Err = err
		} else {
			e = avatarErr(fl.id, err)
		}
	}
	m.finish(fl, a, e)
}

// finish ends fl with a or e: it leaves the flights and gives back its
// slot, counts its result (keeping an auth failure to retry with the next
// token), then sends its last event, its state change and its log line.
func (m *Manager) finish(fl *flight, a *apitype.Avatar, e *errcode.Error) {
	m.mu.Lock()
	if m.flights[fl.id] == fl {
		delete(m.flights, fl.id)
	}
	m.releaseLocked(fl)
	switch {
	case e == nil:
		delete(m.authFailed, fl.id)
		m.results["ok"]++
	case e.Code == errcode.SessionTokenExpired || e.Code == errcode.SessionTokenInvalid:
		m.authFailed[fl.id] = authRetry{LoadOptions{Background: fl.background.Load(), Pin: fl.pin.Load()}, fl.owner}
		m.results[string(e.Code)]++
	case e.Code == errcode.Cancelled:
		m.results[string(e.Code)]++
	default:
		delete(m.authFailed, fl.id)
		m.results[string(e.Code)]++
	}
	m.mu.Unlock()

	m.subs.send(fl.end(a, e))
	switch {
	case e == nil:
		if string(a.State)+" "+a.Version != fl.before {
			m.stateEvent(fl.id, a.State, nil)
		}
	case e.Code != errcode.Cancelled:
		m.stateEvent(fl.id, apitype.StateFailed, e)
	}
	m.logLoad(fl, a, e)
}

// logLoad logs the end of a load: at info a completion (from the cache
// when nothing was downloaded) or a cancel, which is no failure; a failure
// as a warning.
func (m *Manager) logLoad(fl *flight, a *apitype.Avatar, e *errcode.Error) {
	took := m.now().Sub(fl.started).Round(time.Millisecond)
	switch {
	case e == nil:
		fl.mu.Lock()
		received, fromCache := fl.received, fl.fromCache
		fl.mu.Unlock()
		msg, from := "loaded", "origin"
		switch {
		case a.State == apitype.StateStale:
			from = "cache (stale: origin unreachable)"
		case fromCache:
			from = "cache"
		}
		if strings.HasPrefix(fl.before, string(store.StateDamaged)+" ") {
			msg = "healed"
		}
		m.log.Info(msg, "avatar", fl.id, "version", a.Version, "bytes", a.SizeBytes,
			"downloaded", received, "took", took, "from", from)
	case e.Code == errcode.Cancelled:
		m.log.Info("load cancelled", "avatar", fl.id, "took", took)
	default:
		m.log.Warn("load failed", "avatar", fl.id, "code", e.Code, "reason", e.Reason, "took", took, "err", e)
	}
}

// fetchVersion revalidates or fetches the manifest, downloads what is missing
// and makes the new version current. A transient failure of the origin
// serves the cached version stale, when there is one to serve.
func (m *Manager) fetchVersion(fl *flight) (*apitype.Avatar, error) {
	ctx, id := fl.ctx, fl.id
	ctx = fetch.WithTrace(ctx, fl.trace(m))
	// Its requests and downloads queue as background work while the load
	// is; an interactive caller joining it moves them ahead at their next
	// wait.
	ctx = fetch.WithBackground(ctx, fl.background.Load)
	// The key set in force before the fetcher is taken: SetFetcher swaps
	// the fetcher first, then the keys, so a later generation means the
	// manifest may have been verified with keys no longer in force.
	trustGen := m.trust.gen.Load()
	f := m.fetcher.Load()
	if f == nil {
		return nil, &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Phase: errcode.PhaseMetadata,
			AvatarID: id, Reason: errcode.ReasonNoOrigin, Message: "no origin is configured"}
	}
	// A refresh asks the origin (conditionally) whatever the max-age.
	if !fl.revalidate.Load() {
		if a := m.freshCached(id, fl.pin.Load()); a != nil {
			fl.setFromCache()
			return a, nil // another load refreshed it meanwhile
		}
	}
	cached := m.usableCached(fl)
	etag := ""
	if cached != nil && !m.trust.isUntrusted(cached) {
		etag = cached.ETag // an untrusted manifest gets no 304 shortcut
	}
	res, err := f.Manifest(ctx, id, etag)
	if err != nil {
		return m.serveStale(ctx, fl, cached, err)
	}
	now := m.now()
	target, err := versionOf(id, cached, res, now)
	if err != nil {
		return nil, err
	}
	if res.NotModified && cached.State != store.StateDamaged && len(m.st.CheckAvatar(id)) == 0 && m.allPresent(cached.Manifest) {
		return m.revalidated(fl, &target, now)
	}

	// The lease keeps the blobs of target, present or to come, from being
	// collected (making room for this load, another load's eviction, the
	// orphan collection) until the Put has referenced them.
	lease := m.st.Lease(digestsOf(target.Manifest)...)
	defer lease.Release()
	if err := m.fetchBlobs(ctx, f, fl, &target); err != nil {
		// the new version could not be had: keep the old one
		return m.serveStale(ctx, fl, cached, err)
	}
	return m.put(fl, &target, trustGen)
}

// usableCached is the cached version of fl's avatar, if it has a manifest
// to revalidate or to serve stale; nil otherwise. Files found missing
// make it damaged, so that they are fetched again.
func (m *Manager) usableCached(fl *flight) *store.Avatar {
	cached, ok := m.st.Get(fl.id)
	if !ok || cached.Manifest == nil {
		return nil
	}
	fl.before = string(cached.State) + " " + cached.Version
	if bad := m.st.CheckAvatar(fl.id); len(bad) > 0 {
		m.damage(fl.id, bad)
		cached, ok = m.st.Get(fl.id)
		if !ok || cached.Manifest == nil {
			return nil
		}
	}
	return cached
}

// versionOf is the version the origin's answer res makes current: the
// cached one with a 304's ETag and max-age, or the new manifest.
func versionOf(id string, cached *store.Avatar, res *fetch.ManifestResult, now time.Time) (store.Avatar, error) {
	var target store.Avatar
	if res.NotModified {
		if cached == nil {
			return target, &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Phase: errcode.PhaseMetadata, AvatarID: id,
				Message: "the origin answered 304 to a request that was not conditional"}
		}
		target = *cached
		if res.ETag != "" {
			target.ETag = res.ETag
		}
		target.MaxAge = res.MaxAge
	} else {
		if res.Manifest == nil {
			return target, &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Phase: errcode.PhaseMetadata, AvatarID: id,
				Reason: errcode.ReasonInvalidManifest, Message: "the origin sent no manifest"}
		}
		target = store.Avatar{ID: id, Version: res.Manifest.Version, Manifest: res.Manifest,
			RawManifest: res.Raw, ManifestURL: res.URL, ETag: res.ETag, Source: SourceOrigin, MaxAge: res.MaxAge}
	}
	target.State, target.Damaged = store.StateReady, nil
	target.FetchedAt = now
	return target, nil
}

// revalidated makes the cached version, unchanged at the origin and
// intact, fresh again with target's ETag and max-age: nothing to download.
func (m *Manager) revalidated(fl *flight, target *store.Avatar, now time.Time) (*apitype.Avatar, error) {
	if !fl.commit() {
		return nil, context.Cause(fl.ctx)
	}
	if err := m.st.Revalidated(fl.id, target.ETag, target.MaxAge, now); err != nil {
		return nil, storeErr(fl.id, "", err)
	}
	fl.setFromCache()
	return m.current(fl.id, fl.pin.Load())
}

// put makes target, its blobs all present, the current version, unless
// fl was cancelled first. trustGen is the key set's generation the
// manifest was verified under.
func (m *Manager) put(fl *flight, target *store.Avatar, trustGen uint64) (*apitype.Avatar, error) {
	id := fl.id
	// The origin serves these bytes: a blob an import brought first
	// (private) becomes readable by everyone, as origin blobs are.
	if err := m.st.Share(digestsOf(target.Manifest)...); err != nil {
		return nil, storeErr(id, "", err)
	}
	if !fl.commit() {
		return nil, context.Cause(fl.ctx)
	}
	// Pinned as the cache has it now (SetPinned may have run meanwhile),
	// or as a caller of this load asked.
	cur, ok := m.st.Get(id)
	target.Pinned = (ok && cur.Pinned) || fl.pin.Load()
	target.LastUsed = m.now()
	if err := m.st.Put(target); err != nil {
		return nil, storeErr(id, "", err)
	}
	m.views.drop(id)
	m.trust.forgetID(id)
	if m.trust.gen.Load() != trustGen {
		m.rejudgeOne(id)
	}
	return m.current(id, false)
}

// serveStale answers cause, a failure to reach the origin, with the
// cached version marked stale, when cause is transient and the cached
// version (nil when none) is intact and trusted; else it returns cause.
func (m *Manager) serveStale(ctx context.Context, fl *flight, cached *store.Avatar, cause error) (*apitype.Avatar, error) {
	if ctx.Err() != nil || cached == nil || !errs.IsTransient(cause) {
		return nil, cause
	}
	id := fl.id
	if cached.State == store.StateDamaged || m.trust.isUntrusted(cached) || len(m.st.CheckAvatar(id)) > 0 {
		return nil, cause
	}
	m.log.Warn("origin unreachable; serving the cached avatar as stale", "avatar", id, "err", cause)
	if cached.State != store.StateStale {
		if err := m.st.SetState(id, store.StateStale, nil); err != nil {
			return nil, cause
		}
	}
	a, err := m.current(id, fl.pin.Load())
	if err != nil {
		return nil, cause
	}
	fl.stale = cause
	fl.setFromCache()
	return a, nil
}

// current is the cached avatar id, touched and pinned if asked.
func (m *Manager) current(id string, pin bool) (*apitype.Avatar, error) {
	if pin {
		if err := m.st.SetPinned(id, true); err != nil {
			return nil, storeErr(id, "", err)
		}
	}
	a, ok := m.st.Get(id)
	if !ok {
		// Evicted or cleared between the commit and now.
		return nil, notCached(id)
	}
	m.st.Touch(id)
	out := m.toAPI(a)
	out.LastUsed = m.now()
	return out, nil
}
