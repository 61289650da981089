package manager

import (
	"context"
	"fmt"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/caller"
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
	queue               *fair.Queue[int64, *flight]
}

func (a *admission) init(total, perUID int) {
	a.byOwner = map[int64]int{}
	a.bgByOwner = map[int64]int{}
	a.queue = fair.New[int64, *flight]()
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

// admitLocked starts the new flight fl at once when the caps allow, else
// queues it, or refuses it when its caller has too many queued already.
// m.mu is held.
func (m *Manager) admitLocked(fl *flight) error {
	a := &m.adm
	if a.admits(fl.owner, fl.background.Load()) {
		m.startLocked(fl)
		return nil
	}
	if fl.owner != daemonOwner && a.queue.LenOf(fl.owner) >= MaxQueuedPerCaller {
		return &errcode.Error{Code: errcode.ConcurrentLimitExceeded, Phase: errcode.PhaseLocal, AvatarID: fl.id,
			Reason: errcode.ReasonTooManyLoads, Transient: true,
			Message: fmt.Sprintf("uid %d already has %d loads waiting for a slot (api.max_loads_per_uid = %d running); retry when some have ended",
				fl.owner, MaxQueuedPerCaller, a.maxPerUID)}
	}
	fl.queued, fl.queuedBG = true, fl.background.Load()
	fl.last.Waiting = apitype.WaitingQueued
	a.queue.Push(fl.owner, fl.queuedBG, fl)
	return nil
}

// toInteractive moves a queued background load, which an interactive
// caller joined, to the interactive class. m.mu is held.
func (m *Manager) toInteractiveLocked(fl *flight) {
	if fl.queued && fl.queuedBG && m.adm.queue.Remove(fl.owner, true, fl) {
		fl.queuedBG = false
		m.adm.queue.Push(fl.owner, false, fl)
	}
}

func (m *Manager) startLocked(fl *flight) {
	a := &m.adm
	bg := fl.background.Load()
	a.running++
	if bg {
		a.runningBG++
	}
	if fl.owner != daemonOwner {
		a.byOwner[fl.owner]++
		if bg {
			a.bgByOwner[fl.owner]++
		}
	}
	fl.queued, fl.running, fl.runningBG = false, true, bg
	close(fl.admitted)
}

// releaseLocked gives back fl's slot, if it had one, to the next queued
// load. m.mu is held.
func (m *Manager) releaseLocked(fl *flight) {
	if fl.queued {
		m.adm.queue.Remove(fl.owner, fl.queuedBG, fl)
		fl.queued = false
		return
	}
	if !fl.running {
		return
	}
	a := &m.adm
	fl.running = false
	a.running--
	if fl.runningBG {
		a.runningBG--
	}
	if fl.owner != daemonOwner {
		if a.byOwner[fl.owner]--; a.byOwner[fl.owner] <= 0 {
			delete(a.byOwner, fl.owner)
		}
		if fl.runningBG {
			if a.bgByOwner[fl.owner]--; a.bgByOwner[fl.owner] <= 0 {
				delete(a.bgByOwner, fl.owner)
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
			_, fl, ok := a.queue.PopClass(bg, admits)
			if !ok {
				break
			}
			m.startLocked(fl)
		}
	}
}

// waitTurn waits until fl may run. A load that waited announces, to its
// callers and subscribers, that it now moves.
func (m *Manager) waitTurn(fl *flight) error {
	select {
	case <-fl.admitted:
	default:
		select {
		case <-fl.admitted:
		case <-fl.ctx.Done():
			return context.Cause(fl.ctx)
		}
		fl.mu.Lock()
		fl.last.Waiting = ""
		ev := fl.last
		for w := range fl.waiters {
			w.push(ev)
		}
		fl.mu.Unlock()
		m.subs.send(ev)
	}
	return nil
}
