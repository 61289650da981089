package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Causes of an attempt aborted by its monitor.
var (
	errAttemptTimeout = errors.New("attempt timed out")
	errStalled        = errors.New("download stalled")
)

type ctxKey int

// blobKey marks a blob request's context with its *blobRequest: its body
// is subject to the bandwidth limit.
const blobKey ctxKey = 0

// blobRequest is one blob download from one URL. Its first attempt is not
// charged to the host's request limiter: blob downloads are already bounded
// by the concurrency cap and the bandwidth limiter, and charging them would
// cap a device at requests_per_second files a second however fast its link.
// Every retry and redirect hop is charged, so a failing origin is never
// hammered.
type blobRequest struct{ firstDone atomic.Bool }

// transport is the layer every HTTP request of a Client passes, each
// attempt and each redirect hop: it waits for the host's request limiter,
// counts the request, adds the origin's headers only where they belong and
// watches the attempt (monitor).
type transport struct {
	c    *Client
	base http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	ctx, err := c.guard(req)
	if err != nil {
		return nil, err
	}
	blob, _ := ctx.Value(blobKey).(*blobRequest)
	if blob == nil || blob.firstDone.Swap(true) {
		if err := c.hosts.wait(ctx, req.URL.Host); err != nil {
			return nil, err
		}
	}
	c.ctr.requests.Add(1)
	actx, cancel := context.WithCancelCause(ctx)
	r := req.Clone(actx)
	c.setHeaders(r)
	m := newMonitor(c, cancel)
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		m.stop()
		cause := m.cause()
		cancel(nil)
		if cause != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("%w: %w", cause, err)
		}
		return nil, err
	}
	m.headers()
	var bw *bandwidthSlot
	if blob != nil {
		bw = c.bw
	}
	resp.Body = &body{rc: resp.Body, m: m, bw: bw, ctx: actx, cancel: cancel}
	return resp, nil
}

func (t *transport) CloseIdleConnections() {
	if ci, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

func (c *Client) setHeaders(r *http.Request) {
	r.Header.Set("User-Agent", c.cfg.UserAgent)
	r.Header.Del("X-App-ID")
	r.Header.Del("Authorization")
	if !c.authorized(r.URL) {
		return
	}
	if c.cfg.AppID != "" {
		r.Header.Set("X-App-ID", c.cfg.AppID)
	}
	if tok := c.cfg.Token(); tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
}

// body is a monitored response body; a blob's is also bandwidth limited.
type body struct {
	rc     io.ReadCloser
	m      *monitor
	bw     *bandwidthSlot // nil for a manifest
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (b *body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.m.progress(n)
		if bw := b.bw.limiter(); bw != nil {
			b.m.pause(true)
			waited, werr := bw.wait(b.ctx, n)
			b.m.resume(waited)
			if err == nil {
				err = werr
			}
		}
	}
	if err != nil && err != io.EOF {
		if cause := b.m.cause(); cause != nil {
			err = fmt.Errorf("%w: %w", cause, err)
		}
	}
	return n, err
}

func (b *body) Close() error {
	b.m.stop()
	err := b.rc.Close()
	b.cancel(nil)
	return err
}

// monitor aborts one attempt whose headers do not come within
// AttemptTimeout, whose body delivers nothing for AttemptTimeout, or whose
// body delivers less than StallMinBytesPerSecond over a StallWindow. A body
// that keeps flowing is never cut at AttemptTimeout. Time spent waiting
// for this Client's own bandwidth limiter counts as progress.
type monitor struct {
	attempt, window, period time.Duration
	minRate                 int64 // bytes a second; <= 0 = no stall check
	cancel                  context.CancelCauseFunc

	mu           sync.Mutex
	timer        *time.Timer
	inBody       bool
	paused       bool
	done         bool
	why          error
	lastProgress time.Time
	winStart     time.Time
	winBytes     int64
}

func newMonitor(c *Client, cancel context.CancelCauseFunc) *monitor {
	m := &monitor{attempt: c.cfg.AttemptTimeout, window: c.cfg.StallWindow,
		minRate: c.cfg.StallMinBytesPerSecond, cancel: cancel}
	m.period = max(min(m.attempt, m.window)/4, time.Millisecond)
	m.mu.Lock()
	m.timer = time.AfterFunc(m.attempt, m.fire)
	m.mu.Unlock()
	return m
}

// headers switches from the header deadline to watching the body.
func (m *monitor) headers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return
	}
	now := time.Now()
	m.inBody, m.lastProgress, m.winStart = true, now, now
	m.timer.Reset(m.period)
}

func (m *monitor) progress(n int) {
	m.mu.Lock()
	m.lastProgress = time.Now()
	m.winBytes += int64(n)
	m.mu.Unlock()
}

// pause and resume bracket a wait for our own bandwidth limiter: after a
// real wait the window restarts, since our throttling is not the origin's
// stall.
func (m *monitor) pause(on bool) {
	m.mu.Lock()
	m.paused = on
	m.mu.Unlock()
}

func (m *monitor) resume(waited bool) {
	m.mu.Lock()
	m.paused = false
	if waited {
		now := time.Now()
		m.lastProgress, m.winStart, m.winBytes = now, now, 0
	}
	m.mu.Unlock()
}

func (m *monitor) fire() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.done {
		return
	}
	now := time.Now()
	switch {
	case !m.inBody:
		m.abort(errAttemptTimeout)
		return
	case m.paused:
		m.lastProgress, m.winStart, m.winBytes = now, now, 0
	case now.Sub(m.lastProgress) >= m.attempt:
		m.abort(errAttemptTimeout)
		return
	case m.minRate > 0 && now.Sub(m.winStart) >= m.window:
		if float64(m.winBytes) < float64(m.minRate)*now.Sub(m.winStart).Seconds() {
			m.abort(errStalled)
			return
		}
		m.winStart, m.winBytes = now, 0
	}
	m.timer.Reset(m.period)
}

func (m *monitor) abort(why error) {
	m.done, m.why = true, why
	m.cancel(why)
}

func (m *monitor) stop() {
	m.mu.Lock()
	m.done = true
	m.timer.Stop()
	m.mu.Unlock()
}

func (m *monitor) cause() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.why
}
