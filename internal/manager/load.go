package manager

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/caller"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// blobWorkers bounds the goroutines of one load; fetch's own cap bounds
// the downloads of all loads together.
const blobWorkers = 16

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

// flight is one load of an avatar in flight, shared by every caller that
// wants it and run by a goroutine the Manager owns.
type flight struct {
	id         string
	owner      int64         // the uid of the caller that started it, or daemonOwner
	admitted   chan struct{} // closed when it may run
	queued     bool          // waiting for a slot; guarded by Manager.mu
	queuedBG   bool          // the queue's class it waits in; guarded by Manager.mu
	running    bool          // holds a slot; guarded by Manager.mu
	runningBG  bool          // the class its slot counts in; guarded by Manager.mu
	ctx        context.Context
	cancel     context.CancelCauseFunc
	background atomic.Bool
	pin        atomic.Bool
	revalidate atomic.Bool // ask the origin even when fresh by max-age

	mu         sync.Mutex
	waiters    map[*waiter]struct{}
	last       apitype.Event // the latest progress event sent
	done       int64         // bytes present of the distinct blobs
	total      int64
	permille   int
	cancelled  bool
	committing bool  // past the point of no return: Put has begun
	received   int64 // bytes read from the network
	wait       flightWait
	fromCache  bool // the cached version was current: nothing to download

	before  string    // state and version when the load began, "" if not cached
	started time.Time // for the log
	stale   error     // why the cached avatar was served stale; read after finished

	finished chan struct{}
	result   *apitype.Avatar
	err      *errs.Error
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
		if a := m.freshCached(id, o.Pin); a != nil {
			m.countResult(nil)
			m.logCacheHit(a)
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
	deliver := func(evs []apitype.Event) {
		if o.Progress == nil {
			return
		}
		for _, ev := range evs {
			o.Progress(ev)
		}
	}
	for {
		select {
		case <-w.sig:
			deliver(w.take())
		case <-fl.finished:
			deliver(w.take())
			a, err := fl.outcome()
			if err != nil {
				return nil, nil, err
			}
			return a, fl.stale, nil
		case <-ctx.Done():
			fl.removeWaiter(w)
			e := cancelledErr(id)
			e.Err = ctx.Err()
			return nil, nil, e
		}
	}
}

// Start starts the load of id, or joins the one in flight, without
// waiting (?wait=false). When the avatar is cached, intact and fresh, it
// returns it as cached and starts nothing. ctx only names the caller
// (caller.FromContext), whose caps the load counts in.
func (m *Manager) Start(ctx context.Context, id string, o LoadOptions) (inFlight apitype.Load, cached *apitype.Avatar, err error) {
	if err := validateID(id); err != nil {
		return apitype.Load{}, nil, err
	}
	if a := m.freshCached(id, o.Pin); a != nil {
		m.countResult(nil)
		m.logCacheHit(a)
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

// join returns the flight of id, starting one for owner if there is none
// (which waits its turn under the caps on loads), and adds w (if any) to
// its waiters. With revalidate, a new flight asks the origin even when the
// cached avatar is fresh by its max-age.
func (m *Manager) join(owner int64, id string, o LoadOptions, w *waiter, revalidate bool) (*flight, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, cancelledErr(id)
	}
	fl := m.flights[id]
	if fl == nil {
		ctx := m.ctx
		if owner != daemonOwner {
			// fetch queues this load's requests as its owner's.
			ctx = caller.NewContext(ctx, caller.ID{UID: uint32(owner)})
		}
		ctx, cancel := context.WithCancelCause(ctx)
		fl = &flight{
			id:       id,
			owner:    owner,
			admitted: make(chan struct{}),
			ctx:      ctx,
			cancel:   cancel,
			waiters:  map[*waiter]struct{}{},
			last:     apitype.Event{Type: apitype.EventProgress, AvatarID: id, State: apitype.StateDownloading},
			finished: make(chan struct{}),
			started:  m.now(),
		}
		fl.background.Store(o.Background)
		fl.revalidate.Store(revalidate)
		if err := m.admitLocked(fl); err != nil {
			cancel(nil)
			return nil, err
		}
		if fl.queued {
			m.subs.send(fl.last)
		}
		m.flights[id] = fl
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.run(fl)
		}()
	} else {
		if !o.Background && fl.background.Swap(false) {
			m.toInteractiveLocked(fl)
			// its downloads waiting at the cap or the bandwidth
			// limiter move ahead now, not at their next wait
			if f := m.fetcher.Load(); f != nil {
				f.Promote()
			}
		}
	}
	if o.Pin {
		fl.pin.Store(true)
	}
	if w != nil {
		fl.mu.Lock()
		fl.waiters[w] = struct{}{}
		w.push(fl.last)
		fl.mu.Unlock()
	}
	return fl, nil
}

func (fl *flight) removeWaiter(w *waiter) {
	fl.mu.Lock()
	delete(fl.waiters, w)
	fl.mu.Unlock()
}

func (fl *flight) snapshot() apitype.Load {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return apitype.Load{AvatarID: fl.id, State: apitype.StateDownloading, Progress: fl.last.Progress,
		BytesDone: fl.last.BytesDone, BytesTotal: fl.last.BytesTotal, Background: fl.background.Load(),
		Waiting: fl.last.Waiting}
}

func (fl *flight) outcome() (*apitype.Avatar, error) {
	if fl.err != nil {
		return nil, fl.err
	}
	c := *fl.result
	return &c, nil
}

// tryCancel cancels the load unless it is already committing its result.
func (fl *flight) tryCancel() bool {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.committing {
		return false
	}
	fl.cancelled = true
	fl.cancel(errCancelled)
	return true
}

// commit marks the point after which the load is no longer cancelled.
func (fl *flight) commit() bool {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.cancelled || fl.ctx.Err() != nil {
		return false
	}
	fl.committing = true
	return true
}

// setBytes sets what is present of what is wanted, once the manifest is known.
func (fl *flight) setBytes(m *Manager, done, total int64) {
	fl.mu.Lock()
	fl.done, fl.total = done, total
	fl.wait.retry = waitFields{} // the manifest is in
	fl.emitLocked(m, true)
	fl.mu.Unlock()
}

// add moves the bytes present by delta (negative after a restart).
func (fl *flight) add(m *Manager, delta int64) {
	if delta == 0 {
		return
	}
	fl.mu.Lock()
	fl.done += delta
	fl.emitLocked(m, false)
	fl.mu.Unlock()
}

// emitLocked sends a progress event when the fraction has grown by a
// permille, what the load waits for has changed, or force. Fractions and
// bytes never go backwards.
func (fl *flight) emitLocked(m *Manager, force bool) {
	ws := fl.wait.fields()
	changed := ws != waitFieldsOf(fl.last)
	if fl.total <= 0 && !force && !changed {
		return
	}
	frac := 0.0
	if fl.total > 0 {
		frac = float64(fl.done) / float64(fl.total)
	}
	frac = min(max(frac, fl.last.Progress, 0), 1)
	pm := int(frac * 1000)
	if !force && !changed && pm <= fl.permille {
		return
	}
	fl.permille = pm
	done := min(max(fl.done, 0), fl.total)
	if fl.last.BytesTotal == fl.total {
		done = max(done, fl.last.BytesDone)
	}
	ev := apitype.Event{Type: apitype.EventProgress, AvatarID: fl.id, State: apitype.StateDownloading,
		Progress: frac, BytesDone: done, BytesTotal: fl.total, BytesReceived: fl.received}
	ws.set(&ev)
	fl.last = ev
	for w := range fl.waiters {
		w.push(ev)
	}
	m.subs.send(ev)
}

// run is the goroutine of one load.
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

// logCacheHit logs a load answered from the cache with no request.
func (m *Manager) logCacheHit(a *apitype.Avatar) {
	m.log.Info("loaded", "avatar", a.AvatarID, "version", a.Version, "bytes", a.SizeBytes,
		"downloaded", 0, "took", time.Duration(0), "from", "cache")
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

// digestsOf lists the digests of mf's assets (repeats and all).
func digestsOf(mf *manifest.Manifest) []string {
	ds := make([]string, len(mf.Assets))
	for i, a := range mf.Assets {
		ds[i] = a.SHA256
	}
	return ds
}

func (m *Manager) allPresent(mf *manifest.Manifest) bool {
	for _, a := range mf.Assets {
		if !m.st.HasBlob(a.SHA256) {
			return false
		}
	}
	return true
}

type wantBlob struct {
	asset   manifest.Asset
	uses    int64 // assets of the avatar with this digest: progress counts each
	counted int64 // bytes of a partial already counted as done (once)
}

// fetchBlobs downloads the blobs of target that the store lacks, in
// parallel. Progress counts the avatar's bytes as SizeBytes does (a file
// listed twice counts twice); what the store holds already, committed or
// partial, counts as done.
func (m *Manager) fetchBlobs(ctx context.Context, f *fetch.Client, fl *flight, target *store.Avatar) error {
	uses := make(map[string]int64, len(target.Manifest.Assets))
	for _, a := range target.Manifest.Assets {
		uses[a.SHA256]++
	}
	var (
		want        []wantBlob
		done, total int64
		need        int64
	)
	for _, a := range target.Manifest.Assets {
		total += a.Size
		n := uses[a.SHA256]
		if n == 0 {
			continue // seen
		}
		uses[a.SHA256] = 0
		if m.st.HasBlob(a.SHA256) {
			done += n * a.Size
			continue
		}
		p := min(max(m.st.Partial(a.SHA256), 0), a.Size)
		done += n * p
		need += a.Size - p
		want = append(want, wantBlob{asset: a, uses: n, counted: p})
	}
	fl.setBytes(m, done, total)
	if len(want) == 0 {
		return nil
	}
	if need > 0 {
		evicted, err := m.st.EnsureSpaceKeeping(need, fl.id)
		for _, id := range evicted {
			m.views.drop(id)
			m.log.Info("evicted to make room", "avatar", id, "for", fl.id)
		}
		if err != nil {
			return storeErr(fl.id, "", err)
		}
	}
	// Larger files first: they bound the load's duration.
	sort.SliceStable(want, func(i, j int) bool { return want[i].asset.Size > want[j].asset.Size })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(blobWorkers)
	for _, w := range want {
		g.Go(func() error { return m.fetchBlob(gctx, f, fl, target, w) })
	}
	return g.Wait()
}

// fetchBlob downloads one blob into the store, resuming a partial, unless
// another load commits it first.
func (m *Manager) fetchBlob(ctx context.Context, f *fetch.Client, fl *flight, target *store.Avatar, w wantBlob) error {
	a := w.asset
	var credit atomic.Int64 // bytes of this blob counted in fl.done (once)
	credit.Store(w.counted)
	settle := func(n int64) { fl.add(m, w.uses*(n-credit.Swap(n))) }

	if m.st.HasBlob(a.SHA256) {
		settle(a.Size)
		return nil
	}
	wr, err := m.st.Ingest(ctx, a.SHA256, a.Size)
	if err != nil {
		return storeErr(fl.id, a.Path, err)
	}
	if m.st.HasBlob(a.SHA256) { // committed by another load while we waited for the lock
		_ = wr.Abort()
		settle(a.Size)
		return nil
	}
	settle(wr.Size())
	b := fetch.Blob{AvatarID: fl.id, Asset: a, ManifestURL: target.ManifestURL, Background: fl.background.Load()}
	fl.downloading(m, 1)
	err = f.Download(ctx, b, wr, func(delta int64) {
		credit.Add(delta)
		fl.receive(m, w.uses*delta, delta)
	})
	fl.downloading(m, -1)
	if err != nil {
		var e *errs.Error
		if errors.As(err, &e) && (e.Reason == errs.ReasonInsufficientStorage ||
			e.Reason == errs.ReasonHashMismatch || e.Reason == errs.ReasonSizeMismatch) {
			_ = wr.Abort() // bad bytes or a full disk: nothing worth resuming
		} else {
			_ = wr.Close() // keep the partial for the next load to resume
		}
		return downloadErr(fl.id, a.Path, err)
	}
	if err := wr.Commit(); err != nil {
		_ = wr.Close()
		return storeErr(fl.id, a.Path, err)
	}
	settle(a.Size)
	return nil
}

// storeErr is a store failure as an avatar error.
func storeErr(id, asset string, err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		e = e.WithAvatar(id)
		if e.Asset == "" {
			e.Asset = asset
		}
		return e
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &errs.Error{Code: errs.FailedToDownloadAvatarAssets, Phase: errs.PhaseStore, AvatarID: id,
		Asset: asset, Message: err.Error(), Err: err}
}

// downloadErr is a fetch failure as an avatar error naming the asset.
func downloadErr(id, asset string, err error) error {
	var e *errs.Error
	if errors.As(err, &e) {
		e = e.WithAvatar(id)
		if e.Asset == "" {
			e.Asset = asset
		}
		return e
	}
	return storeErr(id, asset, err)
}

// CancelLoading cancels the load of id in flight. Its waiters get a failed
// event with code cancelled; nothing of it becomes visible; its partial
// files stay for the next load. False when no load of id could be
// cancelled (none in flight, or it was already storing its result).
func (m *Manager) CancelLoading(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	fl := m.flights[id]
	if fl == nil || !fl.tryCancel() {
		return false
	}
	delete(m.flights, id)
	return true
}

// CancelAll cancels every load in flight and returns their IDs, sorted.
func (m *Manager) CancelAll() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.flights))
	for id, fl := range m.flights {
		if fl.tryCancel() {
			delete(m.flights, id)
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// cancelAndWait cancels the loads of ids (all when ids is nil) and waits
// until they have ended, so that none stores a result afterwards.
func (m *Manager) cancelAndWait(ctx context.Context, ids []string) error {
	m.mu.Lock()
	var fls []*flight
	if ids == nil {
		for _, fl := range m.flights {
			fls = append(fls, fl)
		}
	} else {
		for _, id := range ids {
			if fl := m.flights[id]; fl != nil {
				fls = append(fls, fl)
			}
		}
	}
	for _, fl := range fls {
		if fl.tryCancel() {
			delete(m.flights, fl.id)
		}
	}
	m.mu.Unlock()
	for _, fl := range fls {
		select {
		case <-fl.finished:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// RetryAuthFailed retries, once, the loads that failed with
// sessionTokenExpired or sessionTokenInvalid, after a new session token.
// A retry that fails on auth again waits for the next token.
func (m *Manager) RetryAuthFailed() {
	m.mu.Lock()
	pending := m.authFailed
	m.authFailed = map[string]authRetry{}
	m.mu.Unlock()
	for id, r := range pending {
		if _, err := m.join(r.owner, id, r.o, nil, false); err != nil && errs.CodeOf(err) == errs.Cancelled {
			return // closed
		}
	}
}

// authRetry is a load that failed on auth, to start again for its owner.
type authRetry struct {
	o     LoadOptions
	owner int64
}
