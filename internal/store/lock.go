package store

import (
	"context"
	"sync"
)

// keyLocker is a per-key mutex whose Lock honours a context, so that one
// digest has one writer at a time within the process.
type keyLocker struct {
	mu    sync.Mutex
	locks map[string]*keyLock
}

type keyLock struct {
	ch   chan struct{} // holds a token while locked
	refs int           // holders and waiters
}

func (l *keyLocker) get(key string) *keyLock {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.locks == nil {
		l.locks = map[string]*keyLock{}
	}
	k := l.locks[key]
	if k == nil {
		k = &keyLock{ch: make(chan struct{}, 1)}
		l.locks[key] = k
	}
	k.refs++
	return k
}

func (l *keyLocker) put(key string, k *keyLock) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if k.refs--; k.refs == 0 {
		delete(l.locks, key)
	}
}

func (l *keyLocker) lock(ctx context.Context, key string) error {
	k := l.get(key)
	select {
	case k.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		l.put(key, k)
		return ctx.Err()
	}
}

func (l *keyLocker) tryLock(key string) bool {
	k := l.get(key)
	select {
	case k.ch <- struct{}{}:
		return true
	default:
		l.put(key, k)
		return false
	}
}

func (l *keyLocker) unlock(key string) {
	l.mu.Lock()
	k := l.locks[key]
	l.mu.Unlock()
	<-k.ch
	l.put(key, k)
}
