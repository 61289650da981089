package api

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/httpserve"
	"github.com/assetd/assetd/internal/version"
)

// Manager is what the routes need of the avatar manager. Its methods are
// those of internal/manager's *Manager, except that Load and Start take
// this package's LoadOptions.
type Manager interface {
	Load(ctx context.Context, id string, o LoadOptions) (*apitype.Avatar, error)
	Start(ctx context.Context, id string, o LoadOptions) (load apitype.Load, cached *apitype.Avatar, err error)
	Retrieve(id string) (*apitype.Avatar, error)
	Import(ctx context.Context, id string, tarStream io.Reader, o ImportOptions) (*apitype.Avatar, error)
	CancelLoading(id string) bool
	CancelAll() []string
	Clear(id string) error
	ClearAll() ([]string, error)
	ClearLRU(keep int) ([]string, error)
	CacheSize(id string) (int64, error)
	Stats() apitype.Stats
	// EachCached and Loads are GET /v1/avatars: the cached avatars, by ID,
	// one at a time (the answer is streamed), then the loads in flight.
	EachCached(yield func(*apitype.Avatar) bool)
	Loads() []apitype.Load
	Verify(ctx context.Context, id string) (apitype.VerifyResult, error)
	SetPinned(id string, pinned bool) error
	RetryAuthFailed()
	Subscribe() (events <-chan apitype.Event, cancel func())
}

// LoadOptions mirrors manager.LoadOptions field for field, so that the
// daemon converts one into the other with a type conversion.
type LoadOptions struct {
	Progress   func(apitype.Event) // every event of this load, in order; must not block
	Background bool
	Pin        bool
}

// ImportOptions mirrors manager.ImportOptions field for field.
type ImportOptions struct {
	Size    int64  // the tar stream's length (Content-Length)
	Version string // "" = the stream's VERSION file, or derived by the manager
	Force   bool   // replace an avatar cached from the origin
}

// Metrics are the figures GET /metrics exposes (the socket's and
// metrics.listen's). The daemon gathers them from the manager, the store
// and the preload duty.
type Metrics struct {
	LoadsByResult                      map[string]uint64 // "ok" or the error code
	BytesDownloaded, Retries, Requests uint64
	BytesFromMirrors                   uint64 // the share of BytesDownloaded that origin.mirrors served
	BytesCacheHit, BytesCacheMiss      uint64 // of BytesDownloaded: answers a site cache marked HIT or MISS
	CacheEntries                       int
	CacheBytes                         int64
	LoadsInFlight                      int
	Stale, Damaged                     int // cached avatars in those states; the rest are ready

	// DiskFreeAboveReserve is the store's file system's free bytes less
	// store.reserve_bytes, when DiskFreeKnown.
	DiskFreeKnown        bool
	DiskFreeAboveReserve int64

	PreloadAvatars int            // on the preload list
	PreloadFailing map[string]int // preload avatars whose latest attempt failed, by code
	// HeldMetered and HeldOutsideWindow say that periodic refreshes are
	// held now: by a metered link (fetch.background_on_metered = false),
	// or because now is outside every preload.refresh_window.
	HeldMetered, HeldOutsideWindow bool
	// RefreshLastSuccess is the oldest, across the preload list's avatars
	// cached from the origin, of the last time the origin confirmed each
	// (a 200 or a 304); zero when there is none.
	RefreshLastSuccess time.Time
}

// Options configure a Server. The zero value serves root, the daemon's
// own user and the members of the daemon's own group (primary or
// supplementary): under the shipped units that is group assetd, which
// `usermod -aG assetd USER` joins.
type Options struct {
	Logger  *slog.Logger // nil = discard
	Version string       // GET /v1/health; "" = version.Version

	// AllowedUIDs and AllowedGIDs admit callers besides root, the daemon's
	// own uid and its own group: by uid, or by primary or supplementary
	// group.
	AllowedUIDs, AllowedGIDs []int

	// Metrics feeds GET /metrics; nil = the cache figures of
	// Manager.Stats and no counters.
	Metrics func() Metrics

	// SetSession installs a new session token and app ID ("" keeps the
	// app ID). PUT /v1/session calls it, then Manager.RetryAuthFailed.
	// nil answers PUT /v1/session with internalError.
	SetSession func(token, appID string) error

	// Reload re-reads the configuration file and puts it in force, or
	// returns why it refused it (the old configuration then stays). POST
	// /v1/reload calls it for root and the daemon's own uid only. nil
	// answers POST /v1/reload with internalError.
	Reload func(ctx context.Context) error

	// Facts are what error hints name (the configuration file in use,
	// origin.url); nil = none known.
	Facts func() errs.Facts

	// Caps on what callers other than root and the daemon's own uid hold
	// open: connections in all (0 = a quarter of RLIMIT_NOFILE, at most
	// 4096) and per uid (0 = 256), and GET /v1/events streams per uid
	// (0 = 64). An event stream its caller has not read for
	// SubscriberReadTimeout (0 = 30 s) is closed.
	MaxConnections, MaxConnectionsPerUID, MaxSubscribersPerUID int
	SubscriberReadTimeout                                      time.Duration
}

// Limits of the server.
const (
	MaxBodyBytes      = 64 << 10
	maxHeaderBytes    = 16 << 10
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 5 * time.Second
)

// Server answers the local API. Create it with New.
type Server struct {
	m       Manager
	opts    Options
	log     *slog.Logger
	version string
	selfUID uint32
	uids    map[uint32]bool
	gids    map[uint32]bool
	lim     *connLimits
}

// New returns a server for m. It starts nothing; see Serve.
func New(m Manager, opts Options) *Server {
	s := &Server{
		m:       m,
		opts:    opts,
		log:     opts.Logger,
		version: opts.Version,
		selfUID: uint32(os.Getuid()),
		uids:    make(map[uint32]bool),
		gids:    make(map[uint32]bool),
		lim:     newConnLimits(opts),
	}
	if s.opts.SubscriberReadTimeout <= 0 {
		s.opts.SubscriberReadTimeout = DefaultSubscriberReadTimeout
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.version == "" {
		s.version = version.Version
	}
	for _, u := range opts.AllowedUIDs {
		s.uids[uint32(u)] = true
	}
	for _, g := range opts.AllowedGIDs {
		s.gids[uint32(g)] = true
	}
	// The daemon's own group is admitted: the socket unit gives the socket
	// to that group (SocketGroup=assetd), and joining it is how an operator
	// lets a user in.
	s.gids[uint32(os.Getgid())] = true
	return s
}

// Handler returns the API's handler. Requests that did not come through
// Serve carry no peer credentials and skip that one check; the handler is
// for tests and for callers that check the caller themselves.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve answers requests on ln, which it owns and closes, until ctx ends.
// Connections past the caps of Options are answered 429 and closed.
// Then it stops accepting, ends the streams (their request contexts derive
// from ctx), waits up to a few seconds for requests to finish, closes what
// is left and returns nil. Any other failure of the listener is returned.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ConnContext:       s.connContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	serve := func() error { return srv.Serve(&limitListener{Listener: ln, s: s, l: s.lim}) }
	return httpserve.Serve(ctx, srv, shutdownTimeout, serve, func(err error) {
		s.log.Warn("api: requests still running at shutdown; closing them", "err", err)
	})
}
