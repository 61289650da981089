package manager

import (
	"context"
	"fmt"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/caller"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/fair"
)

// Caps on loads (api.max_loads, api.max_loads_per_uid).
const (
	DefaultMaxLoads       = 64
	DefaultMaxLoadsPerUID = 32
	// MaxQueuedPerCaller bounds the loads one caller may have waiting for
	// a slot; past it, a new load is refused with concurrentLimitExceeded
	// (tooManyLoads). The daemon's own work is never refused.
	MaxQueuedPerCaller = 1024
)

// daemonOwner owns the daemon's own loads (preload list, refresh,
// self-heal): they count in the total cap only.
const daemonOwner int64 = -1

// ownerOf is the uid of the caller in ctx, or daemonOwner.
func ownerOf(ctx context.Context) int64 {
	if id, ok := caller.FromContext(ctx); ok {
		return int64(id.UID)
	}
	return daemonOwner
}

// admission caps the distinct loads that run at once, in all and per
// caller's uid. Interactive loads count against the caps among themselves
// only: one never waits for a slot that background loads hold (a preload
// of a hundred avatars by the same uid), but starts beside them, and the
// fetch package gives it their bandwidth. A background load starts only
// while the loads of both classes are under the caps. So at most twice the
// caps run at once. Loads past a cap wait in a fair queue: interactive
// before background, round-robin across owners. A load that joins one in
// flight costs nothing. Its fields are guarded by Manager.mu.
type admission struct {
	maxTotal, maxPerUID int
	running             int           // running loads, both classes
	runningBG           int           // of which background
	byOwner             map[int64]int // running loads of each uid, both classes
	bgByOwner           map[int64]int // of which background
	queue               *fair.Queue[int64, *load]
}

func (a *admission) init(total, perUID int) {
	a.byOwner = map[int64]int{}
	a.bgByOwner = map[int64]int{}
	a.queue = fair.New[int64, *load]()
	a.setLimits(total, perUID)
}

func (a *admission) setLimits(total, perUID int) {
	if total <= 0 {
		total = DefaultMaxLoads
	}
	if perUID <= 0 {
		perUID = DefaultMaxLoadsPerUID
	}
	a.maxTotal, a.maxPerUID = total, perUID
}

// admits reports whether a load of owner o and the class may start now.
func (a *admission) admits(o int64, background bool) bool {
	if background {
		return a.running < a.maxTotal && (o == daemonOwner || a.byOwner[o] < a.maxPerUID)
	}
	return a.running-a.runningBG < a.maxTotal && (o == daemonOwner || a.byOwner[o]-a.bgByOwner[o] < a.maxPerUID)
}

// SetLoadLimits changes the caps on loads running at once (a reload);
// <= 0 takes the default. Loads running stay; queued ones start as the
// caps allow.
func (m *Manager) SetLoadLimits(total, perUID int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.adm.setLimits(total, perUID)
	m.grantLocked()
}

// admitLocked starts the new load l at once when the caps allow, else
// queues it, or refuses it when its caller has too many queued already.
// m.mu is held.
func (m *Manager) admitLocked(l *load) error {
	a := &m.adm
	if a.admits(l.owner, l.background.Load()) {
		m.startLocked(l)
		return nil
	}
	if l.owner != daemonOwner && a.queue.LenOf(l.owner) >= MaxQueuedPerCaller {
		return &errs.Error{Code: errs.ConcurrentLimitExceeded, Phase: errs.PhaseLocal, AvatarID: l.id,
			Reason: errs.ReasonTooManyLoads, Transient: true,
			Message: fmt.Sprintf("uid %d already has %d loads waiting for a slot (api.max_loads_per_uid = %d running); retry when some have ended",
				l.owner, MaxQueuedPerCaller, a.maxPerUID)}
	}
	l.queued, l.queuedBG = true, l.background.Load()
	l.last.Waiting = apitype.WaitingQueued
	a.queue.Push(l.owner, l.queuedBG, l)
	return nil
}

// toInteractive moves a queued background load, which an interactive
// caller joined, to the interactive class. m.mu is held.
func (m *Manager) toInteractiveLocked(l *load) {
	if l.queued && l.queuedBG && m.adm.queue.Remove(l.owner, true, l) {
		l.queuedBG = false
		m.adm.queue.Push(l.owner, false, l)
	}
}

func (m *Manager) startLocked(l *load) {
	a := &m.adm
	bg := l.background.Load()
	a.running++
	if bg {
		a.runningBG++
	}
	if l.owner != daemonOwner {
		a.byOwner[l.owner]++
		if bg {
			a.bgByOwner[l.owner]++
		}
	}
	l.queued, l.running, l.runningBG = false, true, bg
	close(l.admitted)
}

// releaseLocked gives back l's slot, if it had one, to the next queued
// load. m.mu is held.
func (m *Manager) releaseLocked(l *load) {
	if l.queued {
		m.adm.queue.Remove(l.owner, l.queuedBG, l)
		l.queued = false
		return
	}
	if !l.running {
		return
	}
	a := &m.adm
	l.running = false
	a.running--
	if l.runningBG {
		a.runningBG--
	}
	if l.owner != daemonOwner {
		if a.byOwner[l.owner]--; a.byOwner[l.owner] <= 0 {
			delete(a.byOwner, l.owner)
		}
		if l.runningBG {
			if a.bgByOwner[l.owner]--; a.bgByOwner[l.owner] <= 0 {
				delete(a.bgByOwner, l.owner)
			}
		}
	}
	m.grantLocked()
}

// grantLocked starts queued loads while the caps allow, interactive ones
// first. m.mu is held.
func (m *Manager) grantLocked() {
	a := &m.adm
	for _, bg := range [2]bool{false, true} {
		admits := func(o int64) bool { return a.admits(o, bg) }
		for {
			_, l, ok := a.queue.PopClass(bg, admits)
			if !ok {
				break
			}
			m.startLocked(l)
		}
	}
}

// waitTurn waits until l may run. A load that waited announces, to its
// callers and subscribers, that it now moves.
func (m *Manager) waitTurn(l *load) error {
	select {
	case <-l.admitted:
	default:
		select {
		case <-l.admitted:
		case <-l.ctx.Done():
			return context.Cause(l.ctx)
		}
		l.mu.Lock()
		l.last.Waiting = ""
		ev := l.last
		for w := range l.waiters {
			w.push(ev)
		}
		l.mu.Unlock()
		m.subs.send(ev)
	}
	return nil
}
