package daemon

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/assetd/assetd/internal/config"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/version"
)

// fetchConfig is the fetch client's configuration from cfg, with the token
// read per request from the session and the app ID the API may have set.
func (d *daemon) fetchConfig(cfg *config.Config) (fetch.Config, error) {
	keys, err := cfg.TrustedKeys()
	if err != nil {
		return fetch.Config{}, err
	}
	roots, err := cfg.RootCAs()
	if err != nil {
		return fetch.Config{}, err
	}
	f := cfg.Fetch
	return fetch.Config{
		BaseURL:                cfg.Origin.URL,
		Mirrors:                cfg.Origin.Mirrors,
		AppID:                  d.sess.appIDOr(cfg.Origin.AppID),
		Token:                  d.sess.Token,
		TokenProblem:           d.sess.TokenProblem,
		AllowInsecure:          cfg.Origin.AllowInsecure,
		AllowLocalTargets:      f.AllowLocalTargets,
		TrustedKeys:            keys,
		RootCAs:                roots,
		RequestsPerSecond:      f.RequestsPerSecond,
		Burst:                  f.Burst,
		BytesPerSecond:         int64(f.BytesPerSecond),
		Concurrency:            f.Concurrency,
		MaxRetries:             f.MaxRetries,
		RetryWaitMin:           f.RetryWaitMin.Std(),
		RetryWaitMax:           f.RetryWaitMax.Std(),
		AttemptTimeout:         f.AttemptTimeout.Std(),
		StallWindow:            f.StallWindow.Std(),
		StallMinBytesPerSecond: int64(f.StallMinBytesPerSecond),
		MaxAssetBytes:          int64(f.MaxAssetBytes),
		MaxHashRetries:         f.MaxHashRetries,
		UserAgent:              version.UserAgent(),
		Logger:                 d.log.With("component", "fetch"),
	}, nil
}

// newFetcher builds the fetch client for cfg: the successor of prev when
// there is one, so that downloads started before a reload and after it are
// under one concurrency cap, one interactive-first queue and one bandwidth
// limit, and their counters add up (see fetch.Client.Stats).
func (d *daemon) newFetcher(cfg *config.Config, prev *fetch.Client) (*fetch.Client, error) {
	fc, err := d.fetchConfig(cfg)
	if err != nil {
		return nil, err
	}
	var c *fetch.Client
	if prev != nil {
		c, err = prev.Successor(fc)
	} else {
		c, err = fetch.New(fc)
	}
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	return c, nil
}

// swapFetcher installs a new fetch client built from cfg, or from the
// configuration in force when cfg is nil, and makes cfg the configuration
// in force. Swaps are serialised, so that a reload and a PUT /v1/session
// racing each other cannot leave a client of the older configuration in
// place. Loads in flight finish with the old client, whose idle connections
// are closed; the new client is its successor, sharing its download gate
// and limits. A cfg whose [origin] and [fetch] are those in force keeps the
// client: its download queue (interactive loads before preloads), its
// concurrency cap and its rate limits go on across reloads that change
// other things, such as the preload list.
func (d *daemon) swapFetcher(cfg *config.Config) (old *config.Config, err error) {
	d.swapMu.Lock()
	defer d.swapMu.Unlock()
	d.mu.Lock()
	old = d.cfg
	if cfg != nil && d.fc != nil && sameFetch(old, cfg) {
		d.cfg = cfg
		d.mu.Unlock()
		return old, nil
	}
	prev := d.fc
	d.mu.Unlock()
	if cfg == nil {
		cfg = old
	}
	fc, err := d.newFetcher(cfg, prev)
	if err != nil {
		return old, err
	}
	d.mu.Lock()
	oldFC := d.fc
	d.fc, d.cfg = fc, cfg
	d.mu.Unlock()
	d.mgr.SetFetcher(fc)
	if oldFC != nil {
		oldFC.Close()
	}
	return old, nil
}

// sameFetch reports whether a and b build the same fetch client. With an
// origin.ca_file they never do: the bundle is read again, so that a
// renewed site CA applies at a reload (the successor shares the queue and
// limits, so nothing is lost).
func sameFetch(a, b *config.Config) bool {
	return reflect.DeepEqual(a.Origin, b.Origin) && reflect.DeepEqual(a.Fetch, b.Fetch) && b.Origin.CAFile == ""
}

func (d *daemon) closeFetcher() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fc != nil {
		d.fc.Close()
	}
}

// tokenRead is the path and content of the token file at its last read.
type tokenRead struct{ path, value string }

// readToken installs the token from cfg's token file or the systemd
// credential, and reports whether it changed. The file's token is installed
// only when the path or the content differs from the last read: a reload
// must not undo a token set by PUT /v1/session with the unchanged (often
// empty, under the shipped unit's SetCredential=) file. With no token file
// the token stays as it is (set by PUT /v1/session, or none); a file that
// cannot be read leaves it as it was too, with a warning (once for the same
// problem). Only Run, before serving, and the control goroutine call it.
func (d *daemon) readToken(cfg *config.Config) (changed bool) {
	if cfg.TokenFile(d.opts.getenv) == "" {
		d.sess.setProblem("")
		return false
	}
	t, err := cfg.ReadSessionToken(d.opts.getenv)
	if err != nil {
		if err.Error() != d.tokenProblem {
			d.log.Warn("cannot read the session token; keeping the current one", "err", err)
		}
		d.tokenProblem = err.Error()
		d.sess.setProblem(err.Error())
		return false
	}
	d.sess.setProblem("")
	if t.Warning != "" && t.Warning != d.tokenProblem {
		d.log.Warn(t.Warning, "token", t)
	}
	d.tokenProblem = t.Warning
	read := &tokenRead{path: t.Path, value: t.Value}
	if d.tokenRead != nil && *d.tokenRead == *read {
		return false
	}
	d.tokenRead = read
	changed = d.sess.setToken(t.Value)
	if changed {
		d.log.Info("session token read", "token", t)
	}
	return changed
}

// setSession is PUT /v1/session: a new token (and app ID) for every request
// from now on. The API then retries the loads that failed on auth. An app
// ID set here outlasts reloads of the configuration until the restart.
func (d *daemon) setSession(token, appID string) error {
	d.sess.setToken(token)
	if appID != "" && d.sess.setAppID(appID) {
		if _, err := d.swapFetcher(nil); err != nil {
			return err
		}
	}
	d.log.Info("session token set through the API", "newAppId", appID != "")
	return nil
}

// reload re-reads the configuration file. A bad file is logged with its
// error and changes nothing; a good one applies at once what can change
// while serving (origin and fetch limits, the caps on loads, the store's quota and reserve,
// token file, log level, preload list) and warns about what needs a
// restart.
func (d *daemon) reload(why string) error {
	done := d.sd.reloading()
	d.log.Info("reloading the configuration", "trigger", why, "file", d.opts.ConfigPath)
	cfg, err := LoadConfig(d.opts)
	if err == nil {
		err = d.apply(cfg)
	}
	if err != nil {
		d.log.Error("configuration reload failed; the old configuration stays in force", "err", err)
		done("serving; the last reload failed")
		return err
	}
	d.log.Info("configuration reloaded", "file", d.opts.ConfigPath, "level", cfg.Log.Level, "origin", cfg.Origin.URL)
	done("serving")
	return nil
}

// reloadRequest is POST /v1/reload waiting for the control goroutine.
type reloadRequest struct{ result chan error }

// requestReload has the control goroutine reload, as SIGHUP does, and
// returns its result: nil when the new configuration is in force.
func (d *daemon) requestReload(ctx context.Context) error {
	req := reloadRequest{result: make(chan error, 1)}
	select {
	case d.reloads <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-req.result:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// apply puts a valid new configuration in force.
func (d *daemon) apply(cfg *config.Config) error {
	old, err := d.swapFetcher(cfg)
	if err != nil {
		return err
	}
	d.level.Set(cfg.Log.SlogLevel())
	d.mgr.SetLoadLimits(cfg.API.MaxLoads, cfg.API.MaxLoadsPerUID)
	d.mgr.SetMaxAssetBytes(int64(cfg.Fetch.MaxAssetBytes))
	if d.store != nil {
		d.store.SetLimits(int64(cfg.Store.MaxBytes), int64(cfg.Store.ReserveBytes))
	}
	if d.readToken(cfg) {
		d.mgr.RetryAuthFailed()
	}
	if d.preload != nil {
		d.preload.Update(d.schedule(cfg))
	}
	d.warnRestart(old, cfg)
	return nil
}

// warnRestart names the settings that changed but apply only at restart.
func (d *daemon) warnRestart(old, cfg *config.Config) {
	check := func(key string, changed bool) {
		if changed {
			d.log.Warn("a changed setting takes effect at the next restart", "key", key)
		}
	}
	check("api.socket", old.API.Socket != cfg.API.Socket)
	check("api.socket_mode", old.API.SocketMode != cfg.API.SocketMode)
	check("api.socket_group", old.API.SocketGroup != cfg.API.SocketGroup)
	check("store.dir", old.Store.Dir != cfg.Store.Dir)
	check("store.self_heal", old.Store.SelfHeal != cfg.Store.SelfHeal)
	check("store.scrub_interval", old.Store.ScrubInterval != cfg.Store.ScrubInterval)
	check("log.format", old.Log.Format != cfg.Log.Format)
	check("metrics.listen", old.Metrics.Listen != cfg.Metrics.Listen)
	check("metrics.allow_remote", old.Metrics.AllowRemote != cfg.Metrics.AllowRemote)
	check("api.allowed_uids", !slices.Equal(old.API.AllowedUIDs, cfg.API.AllowedUIDs))
	check("api.allowed_gids", !slices.Equal(old.API.AllowedGIDs, cfg.API.AllowedGIDs))
	check("api.max_connections", old.API.MaxConnections != cfg.API.MaxConnections)
	check("api.max_connections_per_uid", old.API.MaxConnectionsPerUID != cfg.API.MaxConnectionsPerUID)
	check("api.max_subscribers_per_uid", old.API.MaxSubscribersPerUID != cfg.API.MaxSubscribersPerUID)
}
