package manager

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// The store's ingest writer is what fetch downloads into.
var _ fetch.Sink = (*store.Writer)(nil)

// Options configure a Manager.
type Options struct {
	Logger   *slog.Logger
	SelfHeal bool             // Verify starts a background re-fetch of damaged avatars
	Now      func() time.Time // nil = time.Now
	// MaxAssetBytes bounds each file of an Import; 0 =
	// manifest.DefaultMaxAssetBytes. SetMaxAssetBytes changes it.
	MaxAssetBytes int64
	// SubscriberBuffer is the events a subscriber may fall behind by before
	// it loses some; 0 = 256.
	SubscriberBuffer int
	// MaxLoads and MaxLoadsPerUID cap the distinct loads running at once,
	// in all and per caller's uid; 0 = DefaultMaxLoads, DefaultMaxLoadsPerUID.
	MaxLoads, MaxLoadsPerUID int
}

// Manager is the AvatarManager of the whole device. Its methods are safe
// for concurrent use.
type Manager struct {
	st   *store.Store
	opts Options
	log  *slog.Logger
	now  func() time.Time

	fetcher   atomic.Pointer[fetch.Client]
	fetchBase fetchStats // stats of fetchers replaced by SetFetcher

	ctx    context.Context // parent of every load; ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine the Manager starts

	mu         sync.Mutex
	closed     bool
	flights    map[string]*flight
	adm        admission
	authFailed map[string]authRetry // loads that failed on auth, to retry with a new token
	results    map[string]uint64    // loads by result: "ok" or the error code

	verifies  map[string]*verifyRun // by avatar ID; guarded by mu
	verifySem chan struct{}         // a token per verification running

	views viewCache
	subs  subscribers
	trust trust // the trusted keys' verdicts on cached manifests (trust.go)

	maxAssetBytes atomic.Int64 // bounds each file of an Import (SetMaxAssetBytes)

	// testHookJudge, when set, runs in the trusted keys' pass before it
	// verifies each cached manifest.
	testHookJudge func(ctx context.Context, id string)
	// testHookVerifyBlob, when set, runs before Verify re-hashes each blob.
	testHookVerifyBlob func(digest string)
}

type fetchStats struct {
	mu sync.Mutex
	fetch.Stats
}

// New returns a Manager over st that downloads with f. f may be nil until
// SetFetcher provides one; loads fail until then.
func New(st *store.Store, f *fetch.Client, opts Options) *Manager {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxAssetBytes <= 0 {
		opts.MaxAssetBytes = manifest.DefaultMaxAssetBytes
	}
	if opts.SubscriberBuffer <= 0 {
		opts.SubscriberBuffer = 256
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Manager{
		st:         st,
		opts:       opts,
		log:        opts.Logger,
		now:        opts.Now,
		ctx:        ctx,
		cancel:     cancel,
		flights:    map[string]*flight{},
		authFailed: map[string]authRetry{},
		results:    map[string]uint64{},
		verifies:   map[string]*verifyRun{},
		verifySem:  make(chan struct{}, verifiesAtOnce),
	}
	m.views.init()
	m.maxAssetBytes.Store(opts.MaxAssetBytes)
	m.adm.init(opts.MaxLoads, opts.MaxLoadsPerUID)
	m.subs.init(opts.SubscriberBuffer)
	m.fetcher.Store(f)
	if f != nil {
		m.setTrustedKeys(f.TrustedKeys())
	}
	return m
}

// SetMaxAssetBytes changes the bound on each file of an Import (a reload
// of fetch.max_asset_bytes); <= 0 takes manifest.DefaultMaxAssetBytes.
func (m *Manager) SetMaxAssetBytes(n int64) {
	if n <= 0 {
		n = manifest.DefaultMaxAssetBytes
	}
	m.maxAssetBytes.Store(n)
}

// Close cancels every load, waits for every goroutine the Manager started
// and ends every subscription. It does not close the store or the fetcher.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	for id, fl := range m.flights {
		fl.cancel(errCancelled)
		delete(m.flights, id)
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	m.subs.closeAll()
	return nil
}

// SetFetcher makes new loads use f (a reloaded configuration). Loads in
// flight finish with the fetcher they started with; the caller closes the
// old one when it likes. When f's trusted keys differ from the old
// fetcher's, every cached origin manifest is verified again with them, in
// the background: one that no key of f signed is untrusted (Retrieve
// answers 409, a load fetches it again).
func (m *Manager) SetFetcher(f *fetch.Client) {
	if f == nil {
		return
	}
	old := m.fetcher.Swap(f)
	if old != nil && old != f {
		s := old.Stats()
		m.fetchBase.mu.Lock()
		m.fetchBase.Requests += s.Requests
		m.fetchBase.Retries += s.Retries
		m.fetchBase.BytesDownloaded += s.BytesDownloaded
		m.fetchBase.BytesFromMirrors += s.BytesFromMirrors
		m.fetchBase.BytesCacheHit += s.BytesCacheHit
		m.fetchBase.BytesCacheMiss += s.BytesCacheMiss
		m.fetchBase.mu.Unlock()
	}
	m.setTrustedKeys(f.TrustedKeys())
}

// Metrics are the Manager's counters and its store's figures, for
// /metrics.
type Metrics struct {
	LoadsByResult                      map[string]uint64 // "ok" or the error code
	BytesDownloaded, Retries, Requests uint64
	BytesFromMirrors                   uint64 // the share of BytesDownloaded from origin.mirrors
	BytesCacheHit, BytesCacheMiss      uint64 // of BytesDownloaded: a site cache's HIT and MISS answers
	CacheEntries                       int
	CacheBytes                         int64
	LoadsInFlight                      int
	Stale, Damaged                     int   // cached avatars in those states
	FreeKnown                          bool  // FreeBytes was read from the file system
	FreeBytes, ReserveBytes            int64 // the store's file system's free bytes; store.reserve_bytes
}

// Metrics returns the counters. Loads count once per shared load (however
// many callers joined it) plus once per load answered from a fresh cache.
func (m *Manager) Metrics() Metrics {
	var out Metrics
	m.mu.Lock()
	out.LoadsByResult = make(map[string]uint64, len(m.results))
	for k, v := range m.results {
		out.LoadsByResult[k] = v
	}
	out.LoadsInFlight = len(m.flights)
	m.mu.Unlock()
	m.fetchBase.mu.Lock()
	fs := m.fetchBase.Stats
	m.fetchBase.mu.Unlock()
	if f := m.fetcher.Load(); f != nil {
		s := f.Stats()
		fs.Requests += s.Requests
		fs.Retries += s.Retries
		fs.BytesDownloaded += s.BytesDownloaded
		fs.BytesFromMirrors += s.BytesFromMirrors
		fs.BytesCacheHit += s.BytesCacheHit
		fs.BytesCacheMiss += s.BytesCacheMiss
	}
	out.Requests, out.Retries, out.BytesDownloaded, out.BytesFromMirrors = fs.Requests, fs.Retries, fs.BytesDownloaded, fs.BytesFromMirrors
	out.BytesCacheHit, out.BytesCacheMiss = fs.BytesCacheHit, fs.BytesCacheMiss
	ss := m.st.Stats()
	out.CacheEntries, out.CacheBytes = ss.Entries, ss.TotalBytes
	out.Stale, out.Damaged = ss.Stale, ss.Damaged
	out.FreeKnown, out.FreeBytes, out.ReserveBytes = ss.FreeKnown, ss.FreeBytes, ss.ReserveBytes
	return out
}

func (m *Manager) countResult(err error) {
	key := "ok"
	if err != nil {
		key = string(errs.CodeOf(err))
	}
	m.mu.Lock()
	m.results[key]++
	m.mu.Unlock()
}
