// Package fair is the queue behind assetd's caps: loads waiting for a
// slot in the manager, downloads waiting for the fetch gate, requests
// waiting for a host's rate limiter. Waiters are served interactive before
// background and, within a class, round-robin across their owners (a
// caller's uid, or the daemon itself), each owner's waiters in arrival
// order: one caller with a thousand waiters delays another's next waiter
// by at most one turn.
package fair

import "slices"

// Queue holds waiters of type T by owner K. The zero value is not ready;
// use New. It is not safe for concurrent use: its user holds a lock.
type Queue[K comparable, T comparable] struct {
	class [2]ring[K, T] // interactive, background
	n     int
	byKey map[K]int // waiters of each owner, both classes
}

type ring[K comparable, T comparable] struct {
	keys  []K // owners with waiters, in turn order
	items map[K][]T
	next  int // index in keys of the owner whose turn is next
	n     int // waiters
}

// New returns an empty queue.
func New[K comparable, T comparable]() *Queue[K, T] {
	q := &Queue[K, T]{byKey: map[K]int{}}
	for i := range q.class {
		q.class[i].items = map[K][]T{}
	}
	return q
}

func classOf(background bool) int {
	if background {
		return 1
	}
	return 0
}

// Len is the number of waiters.
func (q *Queue[K, T]) Len() int { return q.n }

// LenOf is the number of waiters of owner k.
func (q *Queue[K, T]) LenOf(k K) int { return q.byKey[k] }

// Push adds v behind owner k's other waiters of its class.
func (q *Queue[K, T]) Push(k K, background bool, v T) {
	r := &q.class[classOf(background)]
	if len(r.items[k]) == 0 {
		// A new owner takes its turn after everyone already waiting, so
		// that an owner whose waiters come one at a time cannot jump the
		// others each time.
		if len(r.keys) == 0 {
			r.keys, r.next = append(r.keys, k), 0
		} else {
			r.keys = slices.Insert(r.keys, r.next, k)
			r.next++
		}
	}
	r.items[k] = append(r.items[k], v)
	r.n++
	q.n++
	q.byKey[k]++
}

// LenClass is the number of waiters of one class.
func (q *Queue[K, T]) LenClass(background bool) int {
	return q.class[classOf(background)].n
}

// Peek returns the waiter PopClass(background, nil) would return,
// leaving it queued.
func (q *Queue[K, T]) Peek(background bool) (k K, v T, found bool) {
	r := &q.class[classOf(background)]
	if len(r.keys) == 0 {
		return k, v, false
	}
	k = r.keys[r.next]
	return k, r.items[k][0], true
}

// Pop removes and returns the next waiter whose owner ok admits (nil ok
// admits all): the interactive class first, and within a class the owners
// in turn. found is false when no waiter is admitted.
func (q *Queue[K, T]) Pop(ok func(K) bool) (k K, v T, found bool) {
	if k, v, found = q.PopClass(false, ok); found {
		return k, v, found
	}
	return q.PopClass(true, ok)
}

// PopClass is Pop within one class only.
func (q *Queue[K, T]) PopClass(background bool, ok func(K) bool) (k K, v T, found bool) {
	r := &q.class[classOf(background)]
	for i := range len(r.keys) {
		idx := (r.next + i) % len(r.keys)
		k = r.keys[idx]
		if ok != nil && !ok(k) {
			continue
		}
		items := r.items[k]
		v = items[0]
		var zero T
		items[0] = zero
		if len(items) == 1 {
			delete(r.items, k)
			r.keys = slices.Delete(r.keys, idx, idx+1)
			r.next = idx // the following owner moved into idx
		} else {
			r.items[k] = items[1:]
			r.next = idx + 1
		}
		if len(r.keys) == 0 || r.next >= len(r.keys) {
			r.next = 0
		}
		r.n--
		q.dec(k)
		return k, v, true
	}
	var zk K
	var zv T
	return zk, zv, false
}

// Promote moves the background waiters for which move reports true to the
// interactive class, each behind its owner's interactive waiters, and
// returns how many moved.
func (q *Queue[K, T]) Promote(move func(k K, v T) bool) int {
	type kv struct {
		k K
		v T
	}
	var moving []kv
	r := &q.class[1]
	for _, k := range r.keys {
		for _, v := range r.items[k] {
			if move(k, v) {
				moving = append(moving, kv{k, v})
			}
		}
	}
	for _, m := range moving {
		q.Remove(m.k, true, m.v)
		q.Push(m.k, false, m.v)
	}
	return len(moving)
}

// Remove takes v, a waiter of owner k in the given class, out of the
// queue; false when it is not there (already popped).
func (q *Queue[K, T]) Remove(k K, background bool, v T) bool {
	r := &q.class[classOf(background)]
	items := r.items[k]
	i := slices.Index(items, v)
	if i < 0 {
		return false
	}
	items = slices.Delete(items, i, i+1)
	if len(items) == 0 {
		delete(r.items, k)
		idx := slices.Index(r.keys, k)
		r.keys = slices.Delete(r.keys, idx, idx+1)
		if idx < r.next {
			r.next--
		}
		if r.next >= len(r.keys) {
			r.next = 0
		}
	} else {
		r.items[k] = items
	}
	r.n--
	q.dec(k)
	return true
}

func (q *Queue[K, T]) dec(k K) {
	q.n--
	if q.byKey[k]--; q.byKey[k] == 0 {
		delete(q.byKey, k)
	}
}
