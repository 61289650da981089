// Package mailbox is the queue between a producer that must never block
// and the one goroutine that drains it: the manager pushes a load's events
// to each waiting caller, and the API's load stream takes them from the
// manager, without either waiting for a slow reader. Pushed values
// coalesce by a rule of the owner's (a newer progress event replaces the
// one queued last), so a queue stays short however slow its reader.
package mailbox

import "sync"

// Box is one mailbox. The zero value is not usable: make one with New.
type Box[T any] struct {
	mu      sync.Mutex
	pending []T
	closed  bool
	ready   chan struct{} // capacity 1: "pending became non-empty"
	replace func(n int, last, next T) bool
}

// New returns an empty, open Box. replace decides, for each push onto a
// non-empty box, whether next takes the place of the value queued last
// instead of queueing behind it; n is the number of values queued. A nil
// replace never replaces.
func New[T any](replace func(n int, last, next T) bool) *Box[T] {
	return &Box[T]{ready: make(chan struct{}, 1), replace: replace}
}

// Push queues v (or puts it in the place of the last value, as replace
// says) and wakes the reader. It never blocks; after Close it does nothing.
func (b *Box[T]) Push(v T) {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	if n := len(b.pending); n > 0 && b.replace != nil && b.replace(n, b.pending[n-1], v) {
		b.pending[n-1] = v
	} else {
		b.pending = append(b.pending, v)
	}
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// Ready has a value after a Push: receive from it, then Take.
func (b *Box[T]) Ready() <-chan struct{} { return b.ready }

// Take returns what is queued, oldest first, and empties the box.
func (b *Box[T]) Take() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.pending
	b.pending = nil
	return v
}

// Close returns what is queued, like Take, and makes later pushes no-ops.
func (b *Box[T]) Close() []T {
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.pending
	b.pending = nil
	b.closed = true
	return v
}
