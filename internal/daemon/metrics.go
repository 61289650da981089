package daemon

import (
	"context"
	"net"
	"time"

	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/config"
	"github.com/assetd/assetd/internal/manager"
)

// metrics gathers what GET /metrics answers, on the socket and on
// metrics.listen: the manager's counters and store figures, and the
// preload list's health.
func (d *daemon) metrics() api.Metrics {
	mm := d.mgr.Metrics()
	m := api.Metrics{
		LoadsByResult:    mm.LoadsByResult,
		BytesDownloaded:  mm.BytesDownloaded,
		BytesFromMirrors: mm.BytesFromMirrors,
		BytesCacheHit:    mm.BytesCacheHit,
		BytesCacheMiss:   mm.BytesCacheMiss,
		Retries:          mm.Retries,
		Requests:         mm.Requests,
		CacheEntries:     mm.CacheEntries,
		CacheBytes:       mm.CacheBytes,
		LoadsInFlight:    mm.LoadsInFlight,
		Stale:            mm.Stale,
		Damaged:          mm.Damaged,
		DiskFreeKnown:    mm.FreeKnown,
	}
	if mm.FreeKnown {
		m.DiskFreeAboveReserve = mm.FreeBytes - mm.ReserveBytes
	}
	d.mu.Lock()
	list, refreshing := d.cfg.Preload.Avatars, d.cfg.Preload.RefreshInterval > 0
	d.mu.Unlock()
	m.PreloadAvatars = len(list)
	if d.preload != nil {
		m.PreloadFailing = d.preload.Failing()
		h := d.preload.Held(time.Now())
		m.HeldMetered, m.HeldOutsideWindow = h.Metered, h.OutsideWindow
	}
	if refreshing { // "0" never refreshes: no refresh to be late
		m.RefreshLastSuccess = d.lastRefresh(list)
	}
	return m
}

// lastRefresh is the oldest, across the avatars of list cached from the
// origin, of the time the origin last confirmed each (the store's
// FetchedAt: a 200 or a 304, kept across restarts); zero when none is.
// An avatar failing to refresh keeps its old time, so the figure ages
// until every listed avatar refreshes again.
func (d *daemon) lastRefresh(list []string) time.Time {
	var oldest time.Time
	for _, id := range list {
		a, ok := d.store.Get(id)
		if !ok || a.Source == manager.SourceImport || a.FetchedAt.IsZero() {
			continue
		}
		if oldest.IsZero() || a.FetchedAt.Before(oldest) {
			oldest = a.FetchedAt
		}
	}
	return oldest
}

// listenMetrics opens metrics.listen, or returns nil when it is off or
// cannot be opened: the avatars are served without it (the scraper sees
// the target down), and the failure is logged.
func (d *daemon) listenMetrics(ctx context.Context, cfg *config.Config) net.Listener {
	if cfg.Metrics.Listen == "" {
		return nil
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Metrics.Listen)
	if err != nil {
		d.log.Error("cannot serve metrics on metrics.listen; serving avatars without it", "listen", cfg.Metrics.Listen, "err", err)
		return nil
	}
	return ln
}
