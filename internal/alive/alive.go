// Package alive lets the daemon's long-lived loops prove that they still
// turn, so that the systemd watchdog is pinged only while they all do.
//
// A Monitor holds one Loop per long-lived loop. Each loop selects on its
// Loop's C besides its own work and calls Beat when it fires (and whenever
// it finishes a piece of work); a loop stuck anywhere (a deadlock, a hung
// read) stops beating. Stalled names the loops whose last beat is older
// than their allowance, and the watchdog pinger stops pinging while any is.
//
// A nil *Monitor and a nil *Loop are valid and do nothing: a daemon without
// a watchdog monitors nothing.
package alive

import (
	"slices"
	"sync"
	"time"
)

// Monitor is the set of monitored loops.
type Monitor struct {
	every time.Duration // how often each loop is woken to beat

	mu    sync.Mutex
	loops map[*Loop]struct{}
}

// New returns a monitor whose loops are woken to beat every period.
func New(every time.Duration) *Monitor {
	return &Monitor{every: every, loops: map[*Loop]struct{}{}}
}

// Loop is one loop's proof of life.
type Loop struct {
	m     *Monitor
	name  string
	stale time.Duration
	tick  *time.Ticker

	mu   sync.Mutex
	last time.Time
}

// Loop registers a loop under name. It is stalled when it has not beaten
// for stale (which must allow for the longest piece of work the loop does
// between beats). The caller must Stop it when the loop ends.
func (m *Monitor) Loop(name string, stale time.Duration) *Loop {
	if m == nil {
		return nil
	}
	l := &Loop{m: m, name: name, stale: stale, tick: time.NewTicker(m.every), last: time.Now()}
	m.mu.Lock()
	m.loops[l] = struct{}{}
	m.mu.Unlock()
	return l
}

// C fires every period of the monitor: the loop beats when it does. A nil
// Loop's C is nil, which never fires in a select.
func (l *Loop) C() <-chan time.Time {
	if l == nil {
		return nil
	}
	return l.tick.C
}

// Beat records that the loop turned.
func (l *Loop) Beat() {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.last = time.Now()
	l.mu.Unlock()
}

// Stop ends the monitoring of a loop that ended on purpose.
func (l *Loop) Stop() {
	if l == nil {
		return
	}
	l.tick.Stop()
	l.m.mu.Lock()
	delete(l.m.loops, l)
	l.m.mu.Unlock()
}

// Stalled returns the names of the loops that have not beaten within their
// allowance, sorted; none when all turn.
func (m *Monitor) Stalled() []string {
	if m == nil {
		return nil
	}
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for l := range m.loops {
		l.mu.Lock()
		if now.Sub(l.last) > l.stale {
			out = append(out, l.name)
		}
		l.mu.Unlock()
	}
	slices.Sort(out)
	return out
}
