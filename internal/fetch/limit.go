package fetch

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/assetd/assetd/internal/caller"
	"github.com/assetd/assetd/internal/fair"
)

// hostLimiters holds one request limiter per host; nil means unlimited.
// Requests that must wait queue fairly (package fair): interactive before
// background (WithBackground), and round-robin across the callers they
// are made for (caller.FromContext; the daemon's own work is one more
// owner), so one caller's thousand queued requests delay
// another's next one by a turn, not by a thousand. Only the queue's head
// holds a reservation at the limiter, so a request that gives up (its load
// was cancelled) gives its place back and charges nothing; had every
// waiter reserved a token, as rate.Limiter.Wait does, cancelling them
// would leave their tokens spent, for minutes after a flood.
type hostLimiters struct {
	limit rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*hostLimiter
}

// hostLimiter is one host's limiter and queue; hostLimiters.mu guards it.
type hostLimiter struct {
	lim     *rate.Limiter
	q       *fair.Queue[int64, chan struct{}]
	pending *rate.Reservation // the head's reservation, nil when none
	timer   *time.Timer       // fires when pending is due
	gen     uint64            // tells a stopped timer's late call from the current one's
}

// maxHostLimiters bounds the per-host limiters a Client keeps.
const maxHostLimiters = 1024

func newHostLimiters(perSecond float64, burst int) *hostLimiters {
	if perSecond <= 0 {
		return nil
	}
	return &hostLimiters{limit: rate.Limit(perSecond), burst: burst, m: map[string]*hostLimiter{}}
}

// ownerOf is the key requests made for ctx's caller queue under: its uid,
// or -1 for the daemon's own work.
func ownerOf(ctx context.Context) int64 {
	if id, ok := caller.FromContext(ctx); ok {
		return int64(id.UID)
	}
	return -1
}

// wait blocks until host may get one more request.
func (h *hostLimiters) wait(ctx context.Context, host string) error {
	if h == nil {
		return ctx.Err()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	h.mu.Lock()
	l := h.get(host)
	if l.q.Len() == 0 && l.pending == nil && l.lim.Allow() {
		h.mu.Unlock()
		return nil
	}
	owner, bg, ch := ownerOf(ctx), backgroundOf(ctx), make(chan struct{})
	l.q.Push(owner, bg, ch)
	h.scheduleLocked(l)
	h.mu.Unlock()

	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		h.mu.Lock()
		if l.q.Remove(owner, bg, ch) && l.q.Len() == 0 {
			h.unscheduleLocked(l)
		}
		h.mu.Unlock()
		return ctx.Err()
	}
}

// get returns host's limiter, creating it. h.mu is held.
func (h *hostLimiters) get(host string) *hostLimiter {
	l := h.m[host]
	if l != nil {
		return l
	}
	if len(h.m) >= maxHostLimiters {
		// Manifests name hosts: keep the map bounded. Dropping the
		// full, idle limiters only forgives hosts at rest.
		for k, v := range h.m {
			if v.q.Len() == 0 && v.pending == nil && v.lim.Tokens() >= float64(h.burst) {
				delete(h.m, k)
			}
		}
	}
	l = &hostLimiter{lim: rate.NewLimiter(h.limit, h.burst), q: fair.New[int64, chan struct{}]()}
	h.m[host] = l
	return l
}

// scheduleLocked lets queued requests through while the limiter has
// tokens, then reserves the next token for the queue's head and sets a
// timer for it. h.mu is held.
func (h *hostLimiters) scheduleLocked(l *hostLimiter) {
	for l.pending == nil && l.q.Len() > 0 {
		r := l.lim.Reserve()
		if d := r.Delay(); d > 0 {
			l.pending = r
			l.gen++
			gen := l.gen
			l.timer = time.AfterFunc(d, func() { h.fire(l, gen) })
			return
		}
		_, ch, _ := l.q.Pop(nil)
		close(ch)
	}
}

// fire hands the due reservation to the queue's head.
func (h *hostLimiters) fire(l *hostLimiter, gen uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if l.gen != gen || l.pending == nil {
		return
	}
	l.pending, l.timer = nil, nil
	if _, ch, ok := l.q.Pop(nil); ok {
		close(ch)
	}
	h.scheduleLocked(l)
}

// unscheduleLocked gives back the head's reservation when nobody waits
// any more. h.mu is held.
func (h *hostLimiters) unscheduleLocked(l *hostLimiter) {
	if l.pending == nil {
		return
	}
	if l.timer.Stop() {
		l.pending.Cancel()
	}
	l.pending, l.timer = nil, nil
	l.gen++
}

// classKey marks a context with the class of the work done under it: a
// func() bool that reports background, read at each wait.
const classKey ctxKey = 2

// Promote tells the download cap and the bandwidth limiter, shared by c's
// succession, to look again at the class of the downloads waiting there:
// those whose WithBackground function now reports false move ahead of
// background ones at once, rather than at their next wait. The caller
// calls it when background work became interactive (a caller joined a
// preload).
func (c *Client) Promote() {
	c.gate.promote()
	if bw := c.bw.limiter(); bw != nil {
		bw.promote()
	}
}

// WithBackground returns ctx marked so that the requests and downloads
// made under it queue as background work (behind interactive work, at the
// request limiter, the download cap and the bandwidth limiter) while
// background() reports true. It is read at each wait, so a background load
// that an interactive caller joins moves ahead at its next read.
func WithBackground(ctx context.Context, background func() bool) context.Context {
	return context.WithValue(ctx, classKey, background)
}

// backgroundOf reports whether ctx's work is background now.
func backgroundOf(ctx context.Context) bool {
	f, _ := ctx.Value(classKey).(func() bool)
	return f != nil && f()
}
