package manager

import (
	"context"
	"sort"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
)

// CancelLoading cancels the load of id in flight. Its waiters get a failed
// event with code cancelled; nothing of it becomes visible; its partial
// files stay for the next load. False when no load of id could be
// cancelled (none in flight, or it was already storing its result).
func (m *Manager) CancelLoading(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	fl := m.flights[id]
	if fl == nil || !fl.tryCancel() {
		return false
	}
	delete(m.flights, id)
	return true
}

// CancelAll cancels every load in flight and returns their IDs, sorted.
func (m *Manager) CancelAll() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := make([]string, 0, len(m.flights))
	for id, fl := range m.flights {
		if fl.tryCancel() {
			delete(m.flights, id)
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// cancelAndWait cancels the loads of ids (all when ids is nil) and waits
// until they have ended, so that none stores a result afterwards.
func (m *Manager) cancelAndWait(ctx context.Context, ids []string) error {
	m.mu.Lock()
	var fls []*flight
	if ids == nil {
		for _, fl := range m.flights {
			fls = append(fls, fl)
		}
	} else {
		for _, id := range ids {
			if fl := m.flights[id]; fl != nil {
				fls = append(fls, fl)
			}
		}
	}
	for _, fl := range fls {
		if fl.tryCancel() {
			delete(m.flights, fl.id)
		}
	}
	m.mu.Unlock()
	for _, fl := range fls {
		select {
		case <-fl.finished:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// RetryAuthFailed retries, once, the loads that failed with
// sessionTokenExpired or sessionTokenInvalid, after a new session token.
// A retry that fails on auth again waits for the next token.
func (m *Manager) RetryAuthFailed() {
	m.mu.Lock()
	pending := m.authFailed
	m.authFailed = map[string]authRetry{}
	m.mu.Unlock()
	for id, r := range pending {
		if _, err := m.join(r.owner, id, r.o, nil, false); err != nil && errs.CodeOf(err) == errcode.Cancelled {
			return // closed
		}
	}
}

// authRetry is a load that failed on auth, to start again for its owner.
type authRetry struct {
	o     LoadOptions
	owner int64
}
