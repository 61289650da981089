package fetch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/assetd/assetd/internal/caller"
	"github.com/assetd/assetd/internal/fair"
)

// hostLimiters holds one request limiter per host; nil means unlimited.
// Requests that must wait queue fairly (package fair): round-robin across
// the callers they are made for (caller.FromContext; the daemon's own work
// is one more owner), so one caller's thousand queued requests delay
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
	owner, ch := ownerOf(ctx), make(chan struct{})
	l.q.Push(owner, false, ch)
	h.scheduleLocked(l)
	h.mu.Unlock()

	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		h.mu.Lock()
		if l.q.Remove(owner, false, ch) && l.q.Len() == 0 {
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

// bandwidth caps the bytes a second of all blob bodies of a Client; nil
// means unlimited.
type bandwidth struct{ l *rate.Limiter }

func newBandwidth(perSecond int64) *bandwidth {
	if perSecond <= 0 {
		return nil
	}
	burst := int(min(perSecond, copyBufferSize))
	return &bandwidth{rate.NewLimiter(rate.Limit(perSecond), burst)}
}

// wait takes n bytes from the budget and reports whether it had to wait.
// WaitN fails outright when n exceeds the burst, so a large read is paid
// for in burst-sized chunks.
func (b *bandwidth) wait(ctx context.Context, n int) (waited bool, err error) {
	burst := b.l.Burst()
	for n > 0 {
		k := min(n, burst)
		r := b.l.ReserveN(time.Now(), k)
		if d := r.Delay(); d > 0 {
			waited = true
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				r.Cancel()
				return waited, ctx.Err()
			}
		}
		n -= k
	}
	return waited, nil
}

// bandwidthSlot holds the bandwidth limiter that a Client and its
// successors share: a new limit replaces the limiter, and downloads in
// flight move to it at their next read.
type bandwidthSlot struct {
	mu        sync.Mutex
	perSecond int64
	cur       atomic.Pointer[bandwidth] // nil = unlimited
}

func newBandwidthSlot(perSecond int64) *bandwidthSlot {
	s := &bandwidthSlot{perSecond: perSecond}
	s.cur.Store(newBandwidth(perSecond))
	return s
}

// set installs a limit of perSecond bytes a second; an unchanged limit
// keeps the limiter and what its budget holds.
func (s *bandwidthSlot) set(perSecond int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if perSecond == s.perSecond || (perSecond <= 0 && s.perSecond <= 0) {
		return
	}
	s.perSecond = perSecond
	s.cur.Store(newBandwidth(perSecond))
}

// limiter is the bandwidth limiter in force, nil when unlimited.
func (s *bandwidthSlot) limiter() *bandwidth {
	if s == nil {
		return nil
	}
	return s.cur.Load()
}

// gate caps the blob downloads running at once. Interactive waiters go
// before background ones; within each class, waiters are served
// round-robin across the callers they download for (package fair). A
// Client and its successors share one gate, resized to the newest
// Concurrency.
type gate struct {
	mu   sync.Mutex
	size int
	free int // < 0 after a shrink, until enough downloads end
	q    *fair.Queue[int64, chan struct{}]
}

func newGate(n int) *gate { return &gate{size: n, free: n, q: fair.New[int64, chan struct{}]()} }

// resize sets the cap to n. Downloads running stay; when n is smaller,
// none starts until fewer than n run.
func (g *gate) resize(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.free += n - g.size
	g.size = n
	g.grant()
}

func (g *gate) acquire(ctx context.Context, background bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	g.mu.Lock()
	if g.free > 0 && g.q.Len() == 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	owner, ch := ownerOf(ctx), make(chan struct{})
	g.q.Push(owner, background, ch)
	g.mu.Unlock()
	tr := traceOf(ctx)
	tr.queued(true)
	defer tr.queued(false)

	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		if g.q.Remove(owner, background, ch) {
			g.mu.Unlock()
			return ctx.Err()
		}
		g.mu.Unlock()
		// granted as we gave up: hand the slot on
		g.release()
		return ctx.Err()
	}
}

func (g *gate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.free++
	g.grant()
}

// grant hands free slots to waiters, interactive ones first. g.mu is held.
func (g *gate) grant() {
	for g.free > 0 {
		_, ch, ok := g.q.Pop(nil)
		if !ok {
			return
		}
		close(ch)
		g.free--
	}
}
