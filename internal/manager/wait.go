package manager

import (
	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/fetch"
)

// flightWait is what a flight waits for, as its progress events say
// (apitype.Event's Waiting fields). Guarded by flight.mu.
type flightWait struct {
	queued   int // blob downloads waiting for a slot
	inFlight int // blob downloads begun (queued or moving)
	retry    waitFields
}

// waitFields are the Waiting fields of one event.
type waitFields struct {
	waiting           string
	attempt, attempts int
	lastErr           string
}

func waitFieldsOf(ev apitype.Event) waitFields {
	return waitFields{ev.Waiting, ev.Attempt, ev.MaxAttempts, ev.LastError}
}

func (w waitFields) set(ev *apitype.Event) {
	ev.Waiting, ev.Attempt, ev.MaxAttempts, ev.LastError = w.waiting, w.attempt, w.attempts, w.lastErr
}

// fields says what the load waits for: a retry it announced and that no
// byte has followed yet, else a slot when every download it began waits
// for one, else nothing.
func (s *flightWait) fields() waitFields {
	switch {
	case s.retry.waiting != "":
		return s.retry
	case s.queued > 0 && s.queued >= s.inFlight:
		return waitFields{waiting: apitype.WaitingQueued}
	}
	return waitFields{}
}

// trace reports the fetch layer's queues and retries to the load's progress.
func (fl *flight) trace(m *Manager) *fetch.Trace {
	return &fetch.Trace{
		Queued: func(q bool) {
			fl.mu.Lock()
			defer fl.mu.Unlock()
			if q {
				fl.wait.queued++
			} else {
				fl.wait.queued--
			}
			fl.emitLocked(m, false)
		},
		Retrying: func(attempt, attempts int, cause string) {
			fl.mu.Lock()
			defer fl.mu.Unlock()
			fl.wait.retry = waitFields{apitype.WaitingRetrying, attempt, attempts, cause}
			fl.emitLocked(m, false)
		},
	}
}

// downloading counts the blob downloads the load has begun.
func (fl *flight) downloading(m *Manager, delta int) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	fl.wait.inFlight += delta
	fl.emitLocked(m, false)
}

// receive adds delta to the bytes present, of which got (when > 0) came
// from the network: a retry announced is over.
func (fl *flight) receive(m *Manager, delta, got int64) {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	if got > 0 {
		fl.received += got
		fl.wait.retry = waitFields{}
	}
	if delta == 0 && got <= 0 {
		return
	}
	fl.done += delta
	fl.emitLocked(m, false)
}

func (fl *flight) setFromCache() {
	fl.mu.Lock()
	fl.fromCache = true
	fl.mu.Unlock()
}
