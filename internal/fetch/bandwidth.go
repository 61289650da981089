package fetch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assetd/assetd/internal/fair"
)

// bandwidth caps the bytes a second of all blob bodies of a Client; nil
// means unlimited. It is a token bucket of rate bytes a second, whose
// readers wait in a fair queue (interactive before background,
// round-robin across callers within a class):
//   - an interactive reader takes its bytes as soon as the bucket holds
//     them;
//   - a background reader takes them only from a full bucket, which holds
//     burst plus bgHoldoff's worth: that is when interactive readers have
//     taken nothing for about bgHoldoff (or, slower than the link, left
//     that much over), so background downloads run at the full rate while
//     nothing interactive runs, take what interactive ones leave, and
//     pause, holding their connection and their partial, while an
//     interactive one wants the link; a reader descheduled for a few
//     milliseconds on a busy CPU does not hand its bytes to them;
//   - but background readers are owed a share of the bytes (bgCredit):
//     every interactive grant made while background readers wait credits
//     them, and the next background reader whose bytes the credit covers
//     goes first. Continuous interactive loads leave background work at
//     least a tenth of the bandwidth: it is slowed, never starved.
//
// The bucket's depth beyond burst lets an interactive reader after an
// idle spell take at most burst + bgHoldoff's worth at once.
type bandwidth struct {
	rate  float64 // bytes a second
	burst int
	full  float64 // the bucket's depth: burst + bgHoldoff's worth

	mu     sync.Mutex
	tokens float64
	last   time.Time // when tokens was brought up to date
	q      *fair.Queue[int64, *bwWaiter]
	credit float64 // bytes owed to background readers
	timer  *time.Timer
	gen    uint64 // tells a stopped timer's late call from the current one's
}

// bgCredit sets the least share of the bandwidth background readers get
// while interactive ones want it all: credit grows by bgCredit per
// interactive byte, so background gets bgCredit/(1+bgCredit) = 1/9 ≈ 11%, above the
// 10% that docs/config.md promises.
const bgCredit = 1.0 / 8

// bgHoldoff is how long interactive readers must have left the link
// unused before background readers take it beyond their credit.
const bgHoldoff = 50 * time.Millisecond

// bwWaiter is one reader waiting for n bytes of budget.
type bwWaiter struct {
	n   int
	ch  chan struct{} // closed when granted
	ctx context.Context
	bg  bool // the class it waits in; bandwidth.mu guards it
}

func newBandwidth(perSecond int64) *bandwidth {
	if perSecond <= 0 {
		return nil
	}
	burst := int(min(perSecond, copyBufferSize))
	return &bandwidth{rate: float64(perSecond), burst: burst, tokens: float64(burst), last: time.Now(),
		full: float64(burst) + float64(perSecond)*bgHoldoff.Seconds(), q: fair.New[int64, *bwWaiter]()}
}

// wait takes n bytes from the budget for ctx's caller and class, and
// reports whether it had to wait. A read larger than the burst is paid
// for in burst-sized chunks.
func (b *bandwidth) wait(ctx context.Context, n int) (waited bool, err error) {
	owner := ownerOf(ctx)
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return waited, err
		}
		k := min(n, b.burst)
		w := &bwWaiter{n: k, ch: make(chan struct{}), ctx: ctx, bg: backgroundOf(ctx)}
		b.mu.Lock()
		b.q.Push(owner, w.bg, w)
		b.scheduleLocked()
		b.mu.Unlock()
		select {
		case <-w.ch:
		default:
			waited = true
			select {
			case <-w.ch:
			case <-ctx.Done():
				b.mu.Lock()
				if b.q.Remove(owner, w.bg, w) {
					b.scheduleLocked() // w may have been the one the timer was for
				}
				b.mu.Unlock()
				return waited, ctx.Err()
			}
		}
		n -= k
	}
	return waited, nil
}

// scheduleLocked grants waiters while the bucket allows, then sets a timer
// for when the next one may go. b.mu is held.
func (b *bandwidth) scheduleLocked() {
	now := time.Now()
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.full, b.tokens+d.Seconds()*b.rate)
	}
	b.last = now
	b.gen++ // a timer already set is superseded
	if b.timer != nil {
		b.timer.Stop()
		b.timer = nil
	}
	for {
		bg, need, ok := b.nextLocked()
		if !ok {
			b.credit = 0 // owed only while background readers wait
			return
		}
		if b.tokens < need {
			d := time.Duration((need - b.tokens) / b.rate * float64(time.Second))
			gen := b.gen
			b.timer = time.AfterFunc(max(d, time.Microsecond), func() { b.fire(gen) })
			return
		}
		_, w, _ := b.q.PopClass(bg, nil)
		b.tokens -= float64(w.n)
		switch {
		case !bg && b.q.LenClass(true) > 0:
			b.credit = min(b.credit+bgCredit*float64(w.n), float64(2*b.burst))
		case bg:
			b.credit = max(0, b.credit-float64(w.n))
		}
		close(w.ch)
	}
}

// nextLocked picks the class served next and the tokens it needs: a
// background reader the credit covers, else an interactive reader, else a
// background reader once the bucket is full. b.mu is held.
func (b *bandwidth) nextLocked() (background bool, need float64, ok bool) {
	_, bw, hasBG := b.q.Peek(true)
	if hasBG && b.credit >= float64(bw.n) {
		return true, float64(bw.n), true
	}
	if _, iw, ok := b.q.Peek(false); ok {
		return false, float64(iw.n), true
	}
	if hasBG {
		return true, b.full, true
	}
	return false, 0, false
}

// promote moves the background readers whose work has become interactive
// (WithBackground) to the interactive class.
func (b *bandwidth) promote() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.q.Promote(func(_ int64, w *bwWaiter) bool {
		if backgroundOf(w.ctx) {
			return false
		}
		w.bg = false
		return true
	}) > 0 {
		b.scheduleLocked()
	}
}

func (b *bandwidth) fire(gen uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if gen == b.gen {
		b.timer = nil
		b.scheduleLocked()
	}
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
