package manager

import (
	"context"
	"strings"
	"time"

	"github.com/assetd/assetd/apitype"
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
	var e *errs.Error
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

func (m *Manager) finish(fl *flight, a *apitype.Avatar, e *errs.Error) {
	m.mu.Lock()
	if m.flights[fl.id] == fl {
		delete(m.flights, fl.id)
	}
	m.releaseLocked(fl)
	switch {
	case e == nil:
		delete(m.authFailed, fl.id)
		m.results["ok"]++
	case e.Code == errs.SessionTokenExpired || e.Code == errs.SessionTokenInvalid:
		m.authFailed[fl.id] = authRetry{LoadOptions{Background: fl.background.Load(), Pin: fl.pin.Load()}, fl.owner}
		m.results[string(e.Code)]++
	case e.Code == errs.Cancelled:
		m.results[string(e.Code)]++
	default:
		delete(m.authFailed, fl.id)
		m.results[string(e.Code)]++
	}
	m.mu.Unlock()

	var ev apitype.Event
	fl.mu.Lock()
	if e == nil {
		fl.result = a
		ev = completedEvent(a)
		ev.FromCache = fl.fromCache
	} else {
		fl.err = e
		ev = failedEvent(fl.id, e, fl.last.BytesDone, fl.last.BytesTotal, fl.last.Progress)
	}
	for w := range fl.waiters {
		w.push(ev)
	}
	close(fl.finished)
	fl.mu.Unlock()
	fl.cancel(nil)

	m.subs.send(ev)
	switch {
	case e == nil:
		if string(a.State)+" "+a.Version != fl.before {
			m.stateEvent(fl.id, a.State, nil)
		}
	case e.Code != errs.Cancelled:
		m.stateEvent(fl.id, apitype.StateFailed, e)
	}
	m.logLoad(fl, a, e)
}

// logLoad logs the end of a load: at info a completion (from the cache
// when nothing was downloaded) or a cancel, which is no failure; a failure
// as a warning.
func (m *Manager) logLoad(fl *flight, a *apitype.Avatar, e *errs.Error) {
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
	case e.Code == errs.Cancelled:
		m.log.Info("load cancelled", "avatar", fl.id, "took", took)
	default:
		m.log.Warn("load failed", "avatar", fl.id, "code", e.Code, "reason", e.Reason, "took", took, "err", e)
	}
}

// fetchVersion revalidates or fetches the manifest, downloads what is missing
// and makes the new version current.
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
		return nil, &errs.Error{Code: errs.FailedToFetchAvatarMetadata, Phase: errs.PhaseMetadata,
			AvatarID: id, Reason: errs.ReasonNoOrigin, Message: "no origin is configured"}
	}
	// A refresh asks the origin (conditionally) whatever the max-age.
	if !fl.revalidate.Load() {
		if a := m.freshCached(id, fl.pin.Load()); a != nil {
			fl.setFromCache()
			return a, nil // another load refreshed it meanwhile
		}
	}
	cached, usable := m.st.Get(id)
	usable = usable && cached.Manifest != nil
	if usable {
		fl.before = string(cached.State) + " " + cached.Version
		if bad := m.st.CheckAvatar(id); len(bad) > 0 {
			m.damage(id, bad) // so that the missing files are fetched again
			cached, usable = m.st.Get(id)
			usable = usable && cached.Manifest != nil
		}
	}
	etag := ""
	if usable && !m.trust.isUntrusted(cached) {
		etag = cached.ETag // an untrusted manifest gets no 304 shortcut
	}
	res, err := f.Manifest(ctx, id, etag)
	if err != nil {
		if ctx.Err() == nil && usable && errs.IsTransient(err) {
			if a := m.serveStale(id, cached, fl.pin.Load(), err); a != nil {
				fl.stale = err
				fl.setFromCache()
				return a, nil
			}
		}
		return nil, err
	}
	now := m.now()
	var target store.Avatar
	if res.NotModified {
		if !usable {
			return nil, &errs.Error{Code: errs.FailedToFetchAvatarMetadata, Phase: errs.PhaseMetadata, AvatarID: id,
				Message: "the origin answered 304 to a request that was not conditional"}
		}
		target = *cached
		if res.ETag != "" {
			target.ETag = res.ETag
		}
		target.MaxAge = res.MaxAge
		if cached.State != store.StateDamaged && len(m.st.CheckAvatar(id)) == 0 && m.allPresent(cached.Manifest) {
			if !fl.commit() {
				return nil, context.Cause(ctx)
			}
			if err := m.st.Revalidated(id, target.ETag, res.MaxAge, now); err != nil {
				return nil, storeErr(id, "", err)
			}
			fl.setFromCache()
			return m.current(id, fl.pin.Load())
		}
	} else {
		if res.Manifest == nil {
			return nil, &errs.Error{Code: errs.FailedToFetchAvatarMetadata, Phase: errs.PhaseMetadata, AvatarID: id,
				Reason: errs.ReasonInvalidManifest, Message: "the origin sent no manifest"}
		}
		target = store.Avatar{ID: id, Version: res.Manifest.Version, Manifest: res.Manifest,
			RawManifest: res.Raw, ManifestURL: res.URL, ETag: res.ETag, Source: SourceOrigin, MaxAge: res.MaxAge}
	}
	target.State, target.Damaged = store.StateReady, nil
	target.FetchedAt = now

	// The lease keeps the blobs of target, present or to come, from being
	// collected (making room for this load, another load's eviction, the
	// orphan collection) until the Put has referenced them.
	lease := m.st.Lease(digestsOf(target.Manifest)...)
	defer lease.Release()
	if err := m.fetchBlobs(ctx, f, fl, &target); err != nil {
		if ctx.Err() == nil && usable && errs.IsTransient(err) {
			if a := m.serveStale(id, cached, fl.pin.Load(), err); a != nil {
				fl.stale = err
				fl.setFromCache()
				return a, nil // the new version could not be had: keep the old one
			}
		}
		return nil, err
	}
	// The origin serves these bytes: a blob an import brought first
	// (private) becomes readable by everyone, as origin blobs are.
	if err := m.st.Share(digestsOf(target.Manifest)...); err != nil {
		return nil, storeErr(id, "", err)
	}
	if !fl.commit() {
		return nil, context.Cause(ctx)
	}
	// Pinned as the cache has it now (SetPinned may have run meanwhile),
	// or as a caller of this load asked.
	cur, ok := m.st.Get(id)
	target.Pinned = (ok && cur.Pinned) || fl.pin.Load()
	target.LastUsed = m.now()
	if err := m.st.Put(&target); err != nil {
		return nil, storeErr(id, "", err)
	}
	m.views.drop(id)
	m.trust.forgetID(id)
	if m.trust.gen.Load() != trustGen {
		m.rejudgeOne(id)
	}
	return m.current(id, false)
}

// serveStale marks the cached avatar stale and returns it, when its files
// are intact and its manifest trusted; nil otherwise.
func (m *Manager) serveStale(id string, cached *store.Avatar, pin bool, cause error) *apitype.Avatar {
	if cached.State == store.StateDamaged || m.trust.isUntrusted(cached) || len(m.st.CheckAvatar(id)) > 0 {
		return nil
	}
	m.log.Warn("origin unreachable; serving the cached avatar as stale", "avatar", id, "err", cause)
	if cached.State != store.StateStale {
		if err := m.st.SetState(id, store.StateStale, nil); err != nil {
			return nil
		}
	}
	a, err := m.current(id, pin)
	if err != nil {
		return nil
	}
	return a
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
