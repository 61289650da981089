package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/client"
	"github.com/assetd/assetd/internal/alive"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/config"
	"github.com/assetd/assetd/internal/duty"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/link"
	"github.com/assetd/assetd/internal/manager"
	"github.com/assetd/assetd/internal/store"
	"github.com/assetd/assetd/internal/version"
	"github.com/assetd/assetd/internal/watch"
)

// Options are what the command line adds to the configuration.
type Options struct {
	ConfigPath string              // "" = the embedded defaults
	Socket     string              // overrides api.socket when not ""
	StateDir   string              // overrides store.dir when not ""
	Getenv     func(string) string // nil = os.Getenv
	Stderr     io.Writer           // the log; nil = os.Stderr
}

func (o *Options) getenv(k string) string {
	if o.Getenv == nil {
		return os.Getenv(k)
	}
	return o.Getenv(k)
}

// LoadConfig reads the configuration the way serve and every reload do: the
// file (or the defaults), the environment, then the command-line overrides.
// Its errors name the file, the line and the key.
func LoadConfig(o Options) (*config.Config, error) {
	cfg, err := config.Load(o.ConfigPath, o.getenv)
	if err != nil {
		return nil, err
	}
	if o.Socket != "" {
		cfg.API.Socket = o.Socket
	}
	if o.StateDir != "" {
		cfg.Store.Dir = o.StateDir
	}
	return cfg, nil
}

// noOrigin is what a load answers without origin.url, for the start's warning.
var noOrigin = &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonNoOrigin}

// FlushInterval is how often the store's last-used times are written.
const FlushInterval = 30 * time.Second

// shutdownGrace is how long the API may take to stop before the daemon
// logs that it is waiting.
const shutdownGrace = 10 * time.Second

// daemon is one run of `assetd serve`.
type daemon struct {
	opts    Options
	log     *slog.Logger
	level   *slog.LevelVar
	sess    *session
	sd      *notifier
	store   *store.Store
	mgr     *manager.Manager
	preload *duty.Preloader
	hup     <-chan os.Signal
	alive   *alive.Monitor     // the loops the watchdog waits on; nil without one
	reloads chan reloadRequest // POST /v1/reload, served by control

	tokenProblem string     // the last token-file problem logged; see readToken
	tokenRead    *tokenRead // the last token file read; see readToken

	blobWatch atomic.Pointer[watch.Watcher] // the running blob watch; see blobRemoval

	swapMu sync.Mutex // serialises swapFetcher
	mu     sync.Mutex // guards cfg and fc
	cfg    *config.Config
	fc     *fetch.Client
}

// Run serves until ctx ends, then shuts down in order and returns nil. It
// returns an error when the daemon cannot start: ErrInUse (wrapped in an
// *InUseError) when another assetd serves the socket.
func Run(ctx context.Context, cfg *config.Config, o Options) (err error) {
	stderr := o.Stderr
	if stderr == nil {
		stderr = os.Stderr
	}
	// SIGHUP kills by default: catch it before anything else, so that an
	// early reload request cannot end the daemon.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	d := &daemon{opts: o, cfg: cfg, level: new(slog.LevelVar), sess: &session{}, hup: hup, reloads: make(chan reloadRequest)}
	d.level.Set(cfg.Log.SlogLevel())
	d.log = newLogger(stderr, cfg.Log.Format, d.level, d.sess.Token)
	d.sd = newNotifier(d.log)
	d.log.Debug("configuration", "file", o.ConfigPath, "config", cfg)
	d.readToken(cfg)

	ln, err := listen(ctx, socketOptions(cfg))
	if err != nil {
		return err
	}
	defer ln.release()

	d.sd.status("opening the store " + cfg.Store.Dir)
	d.store, err = store.Open(cfg.Store.Dir, store.Options{
		MaxBytes:     int64(cfg.Store.MaxBytes),
		ReserveBytes: int64(cfg.Store.ReserveBytes),
		Logger:       d.log.With("component", "store"),
		OnRemoval:    d.blobRemoval,
	})
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			err = fmt.Errorf("%w; pick a directory you may write with --state-dir DIR or ASSETD_STATE_DIR", err)
		}
		return fmt.Errorf("cannot open the store: %w", err)
	}
	defer func() {
		if cerr := d.store.Close(); cerr != nil {
			d.log.Error("closing the store failed", "err", cerr)
			err = errors.Join(err, cerr)
		}
	}()

	d.fc, err = d.newFetcher(cfg, nil)
	if err != nil {
		return err
	}
	d.mgr = manager.New(d.store, d.fc, manager.Options{
		Logger:         d.log.With("component", "manager"),
		SelfHeal:       cfg.Store.SelfHeal,
		MaxAssetBytes:  int64(cfg.Fetch.MaxAssetBytes),
		MaxLoads:       cfg.API.MaxLoads,
		MaxLoadsPerUID: cfg.API.MaxLoadsPerUID,
	})
	srv := api.New(managerAPI{Manager: d.mgr, held: d.held}, d.apiOptions(cfg))
	return d.serve(ctx, cfg, srv, ln)
}

// serve runs the API and the daemon's own goroutines until ctx ends, then
// stops them in order: the API and the duties first, then every load (the
// partial files stay for the next start); the caller closes the store.
func (d *daemon) serve(ctx context.Context, cfg *config.Config, srv *api.Server, ln *socketListener) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	// Under a watchdog every long-lived loop proves that it turns (see
	// watchdog); without one, mon is nil and monitors nothing.
	interval := d.sd.watchdogInterval()
	if interval > 0 {
		d.alive = alive.New(interval / 4)
	}
	quick, slow := interval, max(interval, hashingAllowance)

	d.preload = duty.NewPreloader(d.mgr, d.schedule(cfg), d.log.With("component", "preload"))
	d.preload.Alive = d.alive.Loop("preload", quick)
	scrub := &duty.Scrubber{Verifier: scrubber{d.mgr}, Interval: cfg.Store.ScrubInterval.Std(), Log: d.log.With("component", "scrub"),
		Alive: d.alive.Loop("scrub", slow)}
	flush := d.alive.Loop("flush", quick)
	control := d.alive.Loop("control", quick)
	blobs := d.alive.Loop("blob watcher", slow)
	d.watchLink(runCtx, &wg)
	wg.Go(func() { defer d.preload.Alive.Stop(); _ = d.preload.Run(runCtx) })
	wg.Go(func() { defer scrub.Alive.Stop(); _ = scrub.Run(runCtx) })
	wg.Go(func() { defer flush.Stop(); d.flushLoop(runCtx, flush) })
	armed := make(chan struct{})
	wg.Go(func() { defer control.Stop(); d.control(runCtx, armed, control, quick) })
	wg.Go(func() { defer blobs.Stop(); d.watchBlobs(runCtx, blobs) })
	wg.Go(func() { d.releaseWhenIdle(runCtx) })
	if d.alive != nil {
		api, mgr := d.alive.Loop("api", quick), d.alive.Loop("manager", quick)
		wg.Go(func() { defer api.Stop(); d.probeAPI(runCtx, api, ln.path, quick) })
		wg.Go(func() { defer mgr.Stop(); d.probeManager(runCtx, mgr) })
	}
	waitWatchdog := d.sd.watchdog(runCtx, interval, d.alive)
	defer waitWatchdog()

	// The API answers once the config and token files are watched, so a
	// client that saw the daemon answer knows its next edit is seen.
	select {
	case <-armed:
	case <-ctx.Done():
	}
	// The metrics port is bound before the socket answers, so a client (or
	// a test) that saw the daemon answer finds it listening.
	mln := d.listenMetrics(runCtx, cfg)
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(runCtx, ln) }()
	if mln != nil {
		d.log.Info("serving metrics", "listen", mln.Addr().String(), "remote", cfg.Metrics.AllowRemote)
		wg.Go(func() {
			if err := srv.ServeMetrics(runCtx, mln); err != nil {
				d.log.Error("serving metrics failed", "listen", mln.Addr().String(), "err", err)
			}
		})
	}

	origin := cfg.Origin.URL
	if origin == "" {
		origin = "none"
	}
	d.log.Info("serving", "socket", ln.path, "inherited", ln.inherited, "origin", origin, "store", cfg.Store.Dir, "version", version.Version)
	if cfg.Origin.URL == "" {
		d.log.Warn("no origin is configured: only cached and imported avatars can be served; "+d.facts().Hint(noOrigin), "config", d.opts.ConfigPath)
	}
	d.sd.ready("serving on " + ln.path)

	var serveErr error
	served := false
	select {
	case <-ctx.Done():
	case serveErr = <-serveDone:
		served = true
	}
	d.sd.stopping()
	d.log.Info("shutting down")
	cancel()
	if err := d.mgr.Close(); err != nil {
		d.log.Error("closing the manager failed", "err", err)
	}
	if !served {
		// Serve bounds its own shutdown; this only says so when it drags.
		grace := time.NewTimer(shutdownGrace)
		defer grace.Stop()
		select {
		case serveErr = <-serveDone:
		case <-grace.C:
			d.log.Warn("the API is slow to stop; still waiting")
			serveErr = <-serveDone
		}
	}
	d.closeFetcher()
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) && ctx.Err() == nil {
		return fmt.Errorf("serving the API: %w", serveErr)
	}
	return nil
}

// flushLoop writes the store's last-used times every FlushInterval.
func (d *daemon) flushLoop(ctx context.Context, beat *alive.Loop) {
	t := time.NewTicker(FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C():
			beat.Beat()
			continue
		case <-t.C:
		}
		if err := d.store.Flush(); err != nil {
			d.log.Warn("flushing last-used times failed", "err", err)
		}
		beat.Beat()
	}
}

// hashingAllowance is how long a loop that hashes files between beats (the
// scrub, the blob watcher's verify) may go without one before the watchdog
// stops being pinged: one avatar of up to fetch.max_asset_bytes on a slow
// disk.
const hashingAllowance = 15 * time.Minute

// probeAPI proves that the API accepts and answers: GET /v1/health on a new
// connection to the daemon's own socket, on every beat of the loop.
func (d *daemon) probeAPI(ctx context.Context, beat *alive.Loop, socket string, timeout time.Duration) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C():
		}
		c := client.New(socket)
		pctx, cancel := context.WithTimeout(ctx, timeout)
		_, err := c.Health(pctx)
		cancel()
		c.CloseIdleConnections()
		if err == nil {
			beat.Beat()
		} else if ctx.Err() == nil {
			d.log.Debug("the API's self-check failed", "err", err)
		}
	}
}

// probeManager proves that the manager and the store answer: their
// statistics take the locks every load and download takes.
func (d *daemon) probeManager(ctx context.Context, beat *alive.Loop) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C():
		}
		d.mgr.Stats()
		beat.Beat()
	}
}

func socketOptions(cfg *config.Config) SocketOptions {
	return SocketOptions{
		Path:  cfg.API.Socket,
		Mode:  cfg.API.SocketMode.FileMode(),
		Group: cfg.API.SocketGroup,
	}
}

// linkWait bounds the wait for the link's first metered state at start.
const linkWait = 5 * time.Second

// watchLink starts watching whether the default route is metered and
// waits for the first answer (at most linkWait), so that the preloader's
// first round already knows whether to hold refreshes.
func (d *daemon) watchLink(ctx context.Context, wg *sync.WaitGroup) {
	known := make(chan struct{})
	var once sync.Once
	w := &link.Watcher{Log: d.log.With("component", "link")}
	wg.Go(func() {
		_ = w.Run(ctx, func(metered bool) {
			d.preload.SetMetered(metered)
			once.Do(func() { close(known) })
		})
	})
	t := time.NewTimer(linkWait)
	defer t.Stop()
	select {
	case <-known:
	case <-ctx.Done():
	case <-t.C:
		d.log.Warn("the system D-Bus did not say within 5s whether the link is metered: refreshes run until it does")
	}
}

// held is the background work the preloader holds, for the stats.
func (d *daemon) held() apitype.Background {
	if d.preload == nil {
		return apitype.Background{}
	}
	h := d.preload.Held(time.Now())
	return apitype.Background{
		Held:          h.Metered || h.OutsideWindow,
		OutsideWindow: h.OutsideWindow,
		WindowOpens:   h.Until,
		MeteredLink:   h.Metered,
	}
}

func (d *daemon) schedule(cfg *config.Config) duty.Schedule {
	return duty.Schedule{
		Avatars:  cfg.Preload.Avatars,
		Interval: cfg.Preload.RefreshInterval.Std(),
		Jitter:   cfg.Preload.RefreshJitter.Std(),
		Windows:  cfg.Preload.RefreshWindows(),

		BackgroundOnMetered: cfg.Fetch.BackgroundOnMetered,
	}
}
