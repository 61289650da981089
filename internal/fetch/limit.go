package fetch

import (
	"context"
	"slices"
	"sync"
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

// gate caps the blob downloads running at once. Interactive waiters go
// before background ones; each class is served in arrival order.
type gate struct {
	mu     sync.Mutex
	free   int
	fg, bg []chan struct{}
}

func newGate(n int) *gate { return &gate{free: n} }

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
	for _, q := range []*[]chan struct{}{&g.fg, &g.bg} {
		if len(*q) > 0 {
			close((*q)[0])
			*q = (*q)[1:]
			return
		}
	}
	g.free++
}
