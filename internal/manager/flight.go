package manager

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/caller"
)

// flight is one load of an avatar in flight, shared by every caller that
// wants it and run by a goroutine the Manager owns.
type flight struct {
	id         string
	owner      int64         // the uid of the caller that started it, or daemonOwner
	admitted   chan struct{} // closed when it may run
	queued     bool          // waiting for a slot; guarded by Manager.mu
	queuedBG   bool          // the queue's class it waits in; guarded by Manager.mu
	running    bool          // holds a slot; guarded by Manager.mu
	runningBG  bool          // the class its slot counts in; guarded by Manager.mu
	ctx        context.Context
	cancel     context.CancelCauseFunc
	background atomic.Bool
	pin        atomic.Bool
	revalidate atomic.Bool // ask the origin even when fresh by max-age

	mu         sync.Mutex
	waiters    map[*waiter]struct{}
	last       apitype.Event // the latest progress event sent
	done       int64         // bytes present of the distinct blobs
	total      int64
	permille   int
	cancelled  bool
	committing bool  // past the point of no return: Put has begun
	received   int64 // bytes read from the network
	wait       flightWait
	fromCache  bool // the cached version was current: nothing to download

	before  string    // state and version when the load began, "" if not cached
	started time.Time // for the log
	stale   error     // why the cached avatar was served stale; read after finished

	finished chan struct{}
	result   *apitype.Avatar
	err      *errcode.Error
}

// join returns the flight of id, starting one for owner if there is none
// (which waits its turn under the caps on loads), and adds w (if any) to
// its waiters. With revalidate, a new flight asks the origin even when the
// cached avatar is fresh by its max-age.
func (m *Manager) join(owner int64, id string, o LoadOptions, w *waiter, revalidate bool) (*flight, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, cancelledErr(id)
	}
	fl := m.flights[id]
	if fl == nil {
		fl = m.newFlight(owner, id, o.Background, revalidate)
		if err := m.admitLocked(fl); err != nil {
			fl.cancel(nil)
			return nil, err
		}
		if fl.queued {
			m.subs.send(fl.last)
		}
		m.flights[id] = fl
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.run(fl)
		}()
	} else if !o.Background && fl.background.Swap(false) {
		m.toInteractiveLocked(fl)
		// its downloads waiting at the cap or the bandwidth
		// limiter move ahead now, not at their next wait
		if f := m.fetcher.Load(); f != nil {
			f.Promote()
		}
	}
	if o.Pin {
		fl.pin.Store(true)
	}
	if w != nil {
		fl.addWaiter(w)
	}
	return fl, nil
}

// newFlight is a flight of id for owner, not yet admitted, whose context
// ends at Close.
func (m *Manager) newFlight(owner int64, id string, background, revalidate bool) *flight {
	ctx := m.ctx
	if owner != daemonOwner {
		// fetch queues this load's requests as its owner's.
		ctx = caller.NewContext(ctx, caller.ID{UID: uint32(owner)})
	}
	ctx, cancel := context.WithCancelCause(ctx)
	fl := &flight{
		id:       id,
		owner:    owner,
		admitted: make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		waiters:  map[*waiter]struct{}{},
		last:     apitype.Event{Type: apitype.EventProgress, AvatarID: id, State: apitype.StateDownloading},
		finished: make(chan struct{}),
		started:  m.now(),
	}
	fl.background.Store(background)
	fl.revalidate.Store(revalidate)
	return fl
}

// addWaiter adds w to the waiters, its first event the progress so far.
func (fl *flight) addWaiter(w *waiter) {
	fl.mu.Lock()
	fl.waiters[w] = struct{}{}
	w.push(fl.last)
	fl.mu.Unlock()
}

// follow waits, as waiter w, for the flight's outcome, giving each event to
// progress (if any) from the caller's goroutine. It also returns why the
// cached avatar was served stale, if it was. ctx ends only this wait.
func (fl *flight) follow(ctx context.Context, w *waiter, progress func(apitype.Event)) (a *apitype.Avatar, stale error, err error) {
	deliver := func(evs []apitype.Event) {
		if progress == nil {
			return
		}
		for _, ev := range evs {
			progress(ev)
		}
	}
	for {
		select {
		case <-w.sig:
			deliver(w.take())
		case <-fl.finished:
			deliver(w.take())
			a, err := fl.outcome()
			if err != nil {
				return nil, nil, err
			}
			return a, fl.stale, nil
		case <-ctx.Done():
			fl.removeWaiter(w)
			e := cancelledErr(fl.id)
			e.Err = ctx.Err()
			return nil, nil, e
		}
	}
}

func (fl *flight) removeWaiter(w *waiter) {
	fl.mu.Lock()
	delete(fl.waiters, w)
	fl.mu.Unlock()
}

func (fl *flight) snapshot() apitype.Load {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	return apitype.Load{AvatarID: fl.id, State: apitype.StateDownloading, Progress: fl.last.Progress,
		BytesDone: fl.last.BytesDone, BytesTotal: fl.last.BytesTotal, Background: fl.background.Load(),
		Waiting: fl.last.Waiting}
}

func (fl *flight) outcome() (*apitype.Avatar, error) {
	if fl.err != nil {
		return nil, fl.err
	}
	c := *fl.result
	return &c, nil
}

// end records the flight's outcome, a or e, and gives its last event,
// completed or failed, to its waiters; it returns that event.
func (fl *flight) end(a *apitype.Avatar, e *errcode.Error) apitype.Event {
	var ev apitype.Event
	fl.mu.Lock()
	if e == nil {
		fl.result = a
		ev = completedEvent(a)
		ev.FromCache = fl.fromCache
	} else {
		fl.err = e
		ev = failedEvent(fl.id, e, fl.last.BytesDone, fl.last.BytesTotal, fl.last.Progress)
	}
	for w := range fl.waiters {
		w.push(ev)
	}
	close(fl.finished)
	fl.mu.Unlock()
	fl.cancel(nil)
	return ev
}

// tryCancel cancels the flight unless it is already committing its result.
func (fl *flight) tryCancel() bool {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.committing {
		return false
	}
	fl.cancelled = true
	fl.cancel(errCancelled)
	return true
}

// commit marks the point after which the flight is no longer cancelled.
func (fl *flight) commit() bool {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if fl.cancelled || fl.ctx.Err() != nil {
		return false
	}
	fl.committing = true
	return true
}

// setBytes sets what is present of what is wanted, once the manifest is known.
func (fl *flight) setBytes(m *Manager, done, total int64) {
	fl.mu.Lock()
	fl.done, fl.total = done, total
	fl.wait.retry = waitFields{} // the manifest is in
	fl.emitLocked(m, true)
	fl.mu.Unlock()
}

// add moves the bytes present by delta (negative after a restart).
func (fl *flight) add(m *Manager, delta int64) {
	if delta == 0 {
		return
	}
	fl.mu.Lock()
	fl.done += delta
	fl.emitLocked(m, false)
	fl.mu.Unlock()
}

// emitLocked sends a progress event when the fraction has grown by a
// permille, what the load waits for has changed, or force. Fractions and
// bytes never go backwards.
func (fl *flight) emitLocked(m *Manager, force bool) {
	ws := fl.wait.fields()
	changed := ws != waitFieldsOf(fl.last)
	if fl.total <= 0 && !force && !changed {
		return
	}
	frac := 0.0
	if fl.total > 0 {
		frac = float64(fl.done) / float64(fl.total)
	}
	frac = min(max(frac, fl.last.Progress, 0), 1)
	pm := int(frac * 1000)
	if !force && !changed && pm <= fl.permille {
		return
	}
	fl.permille = pm
	done := min(max(fl.done, 0), fl.total)
	if fl.last.BytesTotal == fl.total {
		done = max(done, fl.last.BytesDone)
	}
	ev := apitype.Event{Type: apitype.EventProgress, AvatarID: fl.id, State: apitype.StateDownloading,
		Progress: frac, BytesDone: done, BytesTotal: fl.total, BytesReceived: fl.received}
	ws.set(&ev)
	fl.last = ev
	for w := range fl.waiters {
		w.push(ev)
	}
	m.subs.send(ev)
}
