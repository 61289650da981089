package fetch

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// hostLimiters holds one request limiter per host; nil means unlimited.
type hostLimiters struct {
	limit rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

// maxHostLimiters bounds the per-host limiters a Client keeps.
const maxHostLimiters = 1024

func newHostLimiters(perSecond float64, burst int) *hostLimiters {
	if perSecond <= 0 {
		return nil
	}
	return &hostLimiters{limit: rate.Limit(perSecond), burst: burst, m: map[string]*rate.Limiter{}}
}

// wait blocks until host may get one more request.
func (h *hostLimiters) wait(ctx context.Context, host string) error {
	if h == nil {
		return ctx.Err()
	}
	h.mu.Lock()
	l := h.m[host]
	if l == nil {
		if len(h.m) >= maxHostLimiters {
			// Manifests name hosts: keep the map bounded. Dropping the
			// full limiters only forgives hosts at rest.
			for k, v := range h.m {
				if v.Tokens() >= float64(h.burst) {
					delete(h.m, k)
				}
			}
		}
		l = rate.NewLimiter(h.limit, h.burst)
		h.m[host] = l
	}
	h.mu.Unlock()
	return l.Wait(ctx)
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
// before background ones; each class is served in arrival order. A Client
// and its successors share one gate, resized to the newest Concurrency.
type gate struct {
	mu     sync.Mutex
	size   int
	free   int // < 0 after a shrink, until enough downloads end
	fg, bg []chan struct{}
}

func newGate(n int) *gate { return &gate{size: n, free: n} }

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
	if g.free > 0 && len(g.fg) == 0 && (!background || len(g.bg) == 0) {
		g.free--
		g.mu.Unlock()
		return nil
	}
	ch := make(chan struct{})
	q := &g.fg
	if background {
		q = &g.bg
	}
	*q = append(*q, ch)
	g.mu.Unlock()
	tr := traceOf(ctx)
	tr.queued(true)
	defer tr.queued(false)

	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		g.mu.Lock()
		if i := slices.Index(*q, ch); i >= 0 {
			*q = slices.Delete(*q, i, i+1)
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
		q := &g.fg
		if len(*q) == 0 {
			q = &g.bg
		}
		if len(*q) == 0 {
			return
		}
		close((*q)[0])
		*q = (*q)[1:]
		g.free--
	}
}
