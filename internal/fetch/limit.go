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
