package fetch

import (
	"context"
	"sync"

	"github.com/assetd/assetd/internal/fair"
)

// gate caps the blob downloads running at once. At most size interactive
// downloads run; a background one starts only while fewer than size run in
// all. So an interactive download never waits for a slot that background
// downloads hold: it starts beside them, and they yield the bandwidth to
// it (see bandwidth) until it ends; at most 2×size downloads run at once.
// Waiters are served interactive first; within each class, round-robin
// across the callers they download for (package fair). A Client and its
// successors share one gate, resized to the newest Concurrency.
type gate struct {
	mu      sync.Mutex
	size    int
	running [2]int // interactive, background
	q       *fair.Queue[int64, *gateWaiter]
}

// gateWaiter is one download waiting for a slot.
type gateWaiter struct {
	ch  chan struct{} // closed when granted
	ctx context.Context
	bg  bool // the class it waits in, and the slot's once granted; gate.mu guards it
}

func newGate(n int) *gate { return &gate{size: n, q: fair.New[int64, *gateWaiter]()} }

func classIndex(background bool) int {
	if background {
		return 1
	}
	return 0
}

// resize sets the cap to n. Downloads running stay; when n is smaller,
// none starts until fewer than n run.
func (g *gate) resize(n int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.size = n
	g.grant()
}

// admitsLocked reports whether a download of the class may start now,
// waiters aside. g.mu is held.
func (g *gate) admitsLocked(background bool) bool {
	if background {
		return g.running[0]+g.running[1] < g.size
	}
	return g.running[0] < g.size
}

// acquire waits for a slot of the class; release(background) gives it back.
func (g *gate) acquire(ctx context.Context, background bool) error {
	_, err := g.acquireClass(ctx, background)
	return err
}

// acquireClass waits for a slot of the class and returns the class it got
// one of: a background waiter whose work became interactive meanwhile
// (promote) gets an interactive slot.
func (g *gate) acquireClass(ctx context.Context, background bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return background, err
	}
	g.mu.Lock()
	ahead := g.q.LenClass(false)
	if background {
		ahead = g.q.Len()
	}
	if ahead == 0 && g.admitsLocked(background) {
		g.running[classIndex(background)]++
		g.mu.Unlock()
		return background, nil
	}
	owner, w := ownerOf(ctx), &gateWaiter{ch: make(chan struct{}), ctx: ctx, bg: background}
	g.q.Push(owner, background, w)
	g.mu.Unlock()
	tr := traceOf(ctx)
	tr.queued(true)
	defer tr.queued(false)

	select {
	case <-w.ch:
		return w.bg, nil // set before w.ch was closed
	case <-ctx.Done():
		g.mu.Lock()
		bg := w.bg
		if g.q.Remove(owner, bg, w) {
			g.mu.Unlock()
			return bg, ctx.Err()
		}
		g.mu.Unlock()
		// granted as we gave up: hand the slot on
		g.release(bg)
		return bg, ctx.Err()
	}
}

// promote moves the background waiters whose work has become interactive
// (WithBackground) to the interactive class.
func (g *gate) promote() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.q.Promote(func(_ int64, w *gateWaiter) bool {
		if backgroundOf(w.ctx) {
			return false
		}
		w.bg = false
		return true
	}) > 0 {
		g.grant()
	}
}

func (g *gate) release(background bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.running[classIndex(background)]--
	g.grant()
}

// grant starts waiters while the cap allows, interactive ones first.
// g.mu is held.
func (g *gate) grant() {
	for _, bg := range [2]bool{false, true} {
		for g.admitsLocked(bg) {
			_, w, ok := g.q.PopClass(bg, nil)
			if !ok {
				break
			}
			g.running[classIndex(bg)]++
			close(w.ch)
		}
	}
}
