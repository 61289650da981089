package duty

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"

	"github.com/assetd/assetd/internal/alive"
)

// Loader is what the preloader needs of the manager.
type Loader interface {
	// Preload loads id as background work and pins it; a cached avatar
	// still fresh by its max-age may cost no request.
	Preload(ctx context.Context, id string) error
	// Refresh is Preload that always revalidates with the origin (a
	// conditional request: an unchanged avatar costs one 304).
	Refresh(ctx context.Context, id string) error
	// Unpin lets an avatar that left the preload list be evicted again.
	Unpin(id string) error
	// PinCached pins id if it is cached, without any request, and says
	// whether it was: the first load of a cached avatar while background
	// work is held.
	PinCached(id string) (bool, error)
}

// Schedule is the [preload] section of the configuration.
type Schedule struct {
	Avatars  []string
	Interval time.Duration // refresh_interval; <= 0 means load once, never refresh
	Jitter   time.Duration // refresh_jitter; unused with Windows
	Windows  []Window      // refresh_window; none: any time

	// BackgroundOnMetered lets refreshes run while the link is metered
	// (fetch.background_on_metered).
	BackgroundOnMetered bool
}

// Backoff bounds for an avatar whose load failed with a transient error.
const (
	minBackoff = 30 * time.Second
	maxBackoff = time.Hour
)

// Preloader keeps the preload list loaded and fresh.
type Preloader struct {
	// Alive beats while Run's loop turns (the daemon's watchdog); nil =
	// none. Set it before Run.
	Alive *alive.Loop

	loader  Loader
	log     *slog.Logger
	jitter  func(time.Duration) time.Duration
	updates chan Schedule
	wake    chan struct{} // the link's metered state changed

	mu       sync.Mutex
	metered  bool
	schedule Schedule
	next     map[string]time.Time
	fails    map[string]int
	running  map[string]bool
	loaded   map[string]bool         // loaded once since it joined the list: refresh from now on
	failing  map[string]errcode.Code // the code of each avatar's latest attempt, while it fails
}

// NewPreloader returns a preloader for s; Run starts it.
func NewPreloader(l Loader, s Schedule, log *slog.Logger) *Preloader {
	if log == nil {
		log = slog.Default()
	}
	p := &Preloader{
		loader:  l,
		log:     log,
		jitter:  randomShare,
		updates: make(chan Schedule, 1),
		wake:    make(chan struct{}, 1),
		next:    map[string]time.Time{},
		fails:   map[string]int{},
		running: map[string]bool{},
		loaded:  map[string]bool{},
		failing: map[string]errcode.Code{},
	}
	p.apply(s)
	return p
}

// randomShare is a uniformly random duration in [0, d).
func randomShare(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(d)))
}

// Update replaces the schedule (a reloaded configuration): new avatars are
// loaded at once, removed ones are unpinned, a new interval applies from
// the next refresh. It never blocks.
func (p *Preloader) Update(s Schedule) {
	for {
		select {
		case p.updates <- s:
			return
		default:
		}
		select {
		case <-p.updates: // drop the older pending update
		default:
		}
	}
}

// Run loads and refreshes until ctx ends, then waits for the loads it
// started to return.
func (p *Preloader) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	done := make(chan string, 16)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Now()
		for _, d := range p.due(now) {
			id := d.id
			load := p.loader.Preload
			switch d.kind {
			case refreshLoad:
				load = p.loader.Refresh
			case pinLoad:
				load = p.pinOrPreload
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.finish(id, load(ctx, id))
				select {
				case done <- id:
				case <-ctx.Done():
				}
			}()
		}
		if wait, ok := p.untilNext(now); ok {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.Alive.C():
		case s := <-p.updates:
			p.apply(s)
		case <-p.wake:
		case <-done:
		case <-timer.C:
		}
		p.Alive.Beat()
	}
}

// loadKind is what a due avatar gets.
type loadKind int

const (
	preloadLoad loadKind = iota // its first load since it joined the list
	refreshLoad                 // a periodic refresh
	pinLoad                     // a first load while held: pinned if cached, else preloaded
)

// dueLoad is an avatar whose time has come.
type dueLoad struct {
	id   string
	kind loadKind
}

// errHeldPinned is pinOrPreload's answer for a cached avatar it pinned
// without a request: finish schedules its refresh as after a load.
var errHeldPinned = errors.New("pinned while background work is held")

// due marks and returns the avatars whose time has come. While the link
// is metered (and that holds background work) a due refresh waits; a first
// load while held only pins a cached avatar, and fetches only one that is
// not cached yet.
func (p *Preloader) due(now time.Time) []dueLoad {
	p.mu.Lock()
	defer p.mu.Unlock()
	metered := p.meteredHolds()
	_, outside := Held(now, p.schedule.Windows)
	var ds []dueLoad
	for _, id := range p.schedule.Avatars {
		if p.running[id] || p.next[id].After(now) {
			continue
		}
		kind := preloadLoad
		switch {
		case p.loaded[id] && metered:
			continue // held until the link is unmetered
		case p.loaded[id] && outside:
			// Due outside the windows (held past one by a metered link,
			// or by a reload): drawn again in the next one.
			p.next[id] = inWindow(now, p.schedule.Windows, p.jitter)
			continue
		case p.loaded[id]:
			kind = refreshLoad
		case metered || outside:
			kind = pinLoad
		}
		p.running[id] = true
		ds = append(ds, dueLoad{id: id, kind: kind})
	}
	return ds
}

// meteredHolds says whether a metered link holds refreshes now; p.mu held.
func (p *Preloader) meteredHolds() bool {
	return p.metered && !p.schedule.BackgroundOnMetered
}

// pinOrPreload pins id when it is cached and preloads it when not: the
// first fetch of an avatar not cached yet is never held.
func (p *Preloader) pinOrPreload(ctx context.Context, id string) error {
	cached, err := p.loader.PinCached(id)
	if err != nil || !cached {
		return p.loader.Preload(ctx, id)
	}
	return errHeldPinned
}

// SetMetered tells the preloader whether the default route is metered
// now; held refreshes start as soon as it is not.
func (p *Preloader) SetMetered(metered bool) {
	p.mu.Lock()
	p.metered = metered
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Hold says whether, and why, the preloader holds background work at now.
type Hold struct {
	Metered       bool      // the link is metered and that holds refreshes
	OutsideWindow bool      // now is outside every refresh window
	Until         time.Time // when the next window opens (OutsideWindow)
}

// Held reports the preloader's hold at now; with no avatar to refresh (an
// empty list, or refresh_interval 0) nothing is held.
func (p *Preloader) Held(now time.Time) Hold {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.schedule.Avatars) == 0 || p.schedule.Interval <= 0 {
		return Hold{} // nothing refreshes: nothing to hold
	}
	until, outside := Held(now, p.schedule.Windows)
	return Hold{Metered: p.meteredHolds(), OutsideWindow: outside, Until: until}
}

// untilNext is the wait until the next avatar is due; false when nothing is
// scheduled (all running or held by a metered link, or an empty list).
func (p *Preloader) untilNext(now time.Time) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var first time.Time
	metered := p.meteredHolds()
	for _, id := range p.schedule.Avatars {
		if p.running[id] || (metered && p.loaded[id]) {
			continue // SetMetered wakes the held refreshes
		}
		if t := p.next[id]; first.IsZero() || t.Before(first) {
			first = t
		}
	}
	if first.IsZero() {
		return 0, false
	}
	return max(first.Sub(now), 0), true
}

// finish schedules id's next load from the result of this one.
func (p *Preloader) finish(id string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, id)
	if _, listed := p.next[id]; !listed {
		return // removed from the list while it loaded
	}
	now := time.Now()
	switch code := errs.CodeOf(err); {
	case err == nil:
		delete(p.failing, id)
	case errors.Is(err, errHeldPinned), code == errcode.Cancelled:
		// neither a success nor a failure: as it was
	default:
		p.failing[id] = code
	}
	switch {
	case errors.Is(err, errHeldPinned):
		// Cached and pinned without a request: refreshed when due, as
		// if loaded now; at once when only the metered link held it.
		p.fails[id] = 0
		p.loaded[id] = true
		p.next[id] = now
		if _, outside := Held(now, p.schedule.Windows); outside {
			p.next[id] = p.refreshAt(now)
		}
		p.log.Debug("refreshes held: the cached avatar is pinned without a request", "avatarId", id, "refreshAt", p.next[id])
	case err == nil:
		p.fails[id] = 0
		p.loaded[id] = true
		p.next[id] = p.refreshAt(now)
	case errs.IsTransient(err) || errs.CodeOf(err) == errcode.Cancelled:
		p.fails[id]++
		b := backoff(p.fails[id])
		if p.schedule.Interval > 0 {
			b = min(b, p.schedule.Interval)
		}
		p.next[id] = now.Add(b + p.jitter(b/2))
		if p.loaded[id] && len(p.schedule.Windows) > 0 {
			// A refresh's retry stays inside the refresh windows.
			p.next[id] = inWindow(p.next[id], p.schedule.Windows, p.jitter)
		}
		p.log.Warn("preload failed; will retry", "avatarId", id, "code", errs.CodeOf(err), "retryIn", b.Round(time.Second), "err", err)
	default:
		// A final answer (unknown avatar, account error): try again at the
		// next refresh, when an operator may have fixed it.
		p.fails[id] = 0
		p.next[id] = p.refreshAt(now)
		p.log.Error("preload failed", "avatarId", id, "code", errs.CodeOf(err), "err", err)
	}
}

// Failing counts the listed avatars whose latest load or refresh failed,
// by error code (a cancelled attempt, or one held by a metered link or the
// refresh windows, changes nothing). At most one entry
// per listed avatar: the map is bounded by the preload list.
func (p *Preloader) Failing() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.failing))
	for _, c := range p.failing {
		out[string(c)]++
	}
	return out
}

// refreshAt is when an avatar loaded at now is next revalidated.
func (p *Preloader) refreshAt(now time.Time) time.Time {
	return Next(now, p.schedule, p.jitter)
}

func backoff(fails int) time.Duration {
	b := minBackoff
	for i := 1; i < fails && b < maxBackoff; i++ {
		b *= 2
	}
	return min(b, maxBackoff)
}

// apply installs a new schedule.
func (p *Preloader) apply(s Schedule) {
	p.mu.Lock()
	keep := make(map[string]bool, len(s.Avatars))
	for _, id := range s.Avatars {
		keep[id] = true
	}
	var removed []string
	for id := range p.next {
		if !keep[id] {
			removed = append(removed, id)
			delete(p.next, id)
			delete(p.fails, id)
			delete(p.loaded, id)
			delete(p.failing, id)
		}
	}
	now := time.Now()
	p.schedule = Schedule{Interval: s.Interval, Jitter: s.Jitter, Windows: s.Windows, BackgroundOnMetered: s.BackgroundOnMetered}
	for _, id := range s.Avatars {
		if _, ok := p.next[id]; !ok {
			p.next[id] = now
		} else if len(s.Windows) > 0 {
			if _, outside := Held(p.next[id], s.Windows); outside && p.loaded[id] && s.Interval > 0 {
				p.next[id] = inWindow(minTime(p.next[id], now.Add(s.Interval)), s.Windows, p.jitter)
			}
		} else if limit := now.Add(s.Interval + s.Jitter); s.Interval > 0 && p.next[id].After(limit) {
			p.next[id] = now.Add(s.Interval + p.jitter(s.Jitter))
		}
		if !slices.Contains(p.schedule.Avatars, id) {
			p.schedule.Avatars = append(p.schedule.Avatars, id)
		}
	}
	p.mu.Unlock()
	for _, id := range removed {
		if err := p.loader.Unpin(id); err != nil && errs.CodeOf(err) != errcode.AvatarAssetMissing {
			p.log.Warn("unpin of an avatar that left the preload list failed", "avatarId", id, "err", err)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
