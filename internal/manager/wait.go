package manager

import (
	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/fetch"
)

// loadWait is what a load waits for, as its progress events say
// (apitype.Event's Waiting fields). Guarded by load.mu.
type loadWait struct {
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
func (s *loadWait) fields() waitFields {
	switch {
	case s.retry.waiting != "":
		return s.retry
	case s.queued > 0 && s.queued >= s.inFlight:
		return waitFields{waiting: apitype.WaitingQueued}
	}
	return waitFields{}
}

// trace reports the fetch layer's queues and retries to the load's progress.
func (l *load) trace(m *Manager) *fetch.Trace {
	return &fetch.Trace{
		Queued: func(q bool) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if q {
				l.wait.queued++
			} else {
				l.wait.queued--
			}
			l.emitLocked(m, false)
		},
		Retrying: func(attempt, attempts int, cause string) {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.wait.retry = waitFields{apitype.WaitingRetrying, attempt, attempts, cause}
			l.emitLocked(m, false)
		},
	}
}

// downloading counts the blob downloads the load has begun.
func (l *load) downloading(m *Manager, delta int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.wait.inFlight += delta
	l.emitLocked(m, false)
}

// receive adds delta to the bytes present, of which got (when > 0) came
// from the network: a retry announced is over.
func (l *load) receive(m *Manager, delta, got int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if got > 0 {
		l.received += got
		l.wait.retry = waitFields{}
	}
	if delta == 0 && got <= 0 {
		return
	}
	l.done += delta
	l.emitLocked(m, false)
}

func (l *load) setFromCache() {
	l.mu.Lock()
	l.fromCache = true
	l.mu.Unlock()
}
