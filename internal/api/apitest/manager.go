// Package apitest is for tests only: Manager, an api.Manager scripted per
// test, and Serve, the real api.Server on a temporary Unix socket. The API
// layer's own tests and the command line's tests use them, so that a
// change to the routes, the NDJSON streams or the error body is tested
// where the clients meet it, not against a copy of the API written by hand.
//
// apitest imports api, apitype and errs; nothing outside tests imports it.
package apitest

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/api"
)

// Manager is an api.Manager for tests. Each method records its call
// (Calls) and answers from its function field when that is set; otherwise
// from the avatars, loads and scripts the test gave it (Put, SetLoads,
// Script, ...), much as the daemon's manager would: a missing avatar is
// avatarAssetMissing, reason notCached. The zero value is ready to use and
// has nothing cached. Its methods are safe for concurrent use; set the
// function fields before serving.
type Manager struct {
	// Quiet records no calls (benchmarks).
	Quiet bool

	LoadFn            func(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error)
	StartFn           func(id string, o api.LoadOptions) (apitype.Load, *apitype.Avatar, error)
	RetrieveFn        func(id string) (*apitype.Avatar, error)
	ImportFn          func(ctx context.Context, id string, r io.Reader, o api.ImportOptions) (*apitype.Avatar, error)
	CancelLoadingFn   func(id string) bool
	CancelAllFn       func() []string
	ClearFn           func(id string) error
	ClearAllFn        func() ([]string, error)
	ClearLRUFn        func(keep int) ([]string, error)
	CacheSizeFn       func(id string) (int64, error)
	StatsFn           func() apitype.Stats
	ListFn            func() apitype.List
	VerifyFn          func(ctx context.Context, id string) (apitype.VerifyResult, error)
	SetPinnedFn       func(id string, pinned bool) error
	RetryAuthFailedFn func()
	SubscribeFn       func() (<-chan apitype.Event, func())

	// Delivered, when set, is called after each scripted load event is
	// handed to the API and before the next. The API collapses a run of
	// progress events its reader has not taken yet into the latest (as it
	// must: the manager never waits for a reader); a test that asserts on
	// every event waits in Delivered until its client has this one.
	Delivered func(ctx context.Context, ev apitype.Event)

	mu       sync.Mutex
	calls    []string
	avatars  map[string]apitype.Avatar
	loads    []apitype.Load
	scripts  map[string][]apitype.Event
	hang     map[string]chan struct{} // closed by CancelLoading
	verify   map[string]apitype.VerifyResult
	events   []apitype.Event
	eventsOn bool // SetEvents was called
	stats    apitype.Stats
	imports  []Import
	sessions []apitype.Session
	started  chan string
}

var _ api.Manager = (*Manager)(nil)

// Import is one import the Manager took: the avatar, the options and the
// tar stream's regular files, "path=content".
type Import struct {
	AvatarID string
	Version  string
	Force    bool
	Files    []string
}

// NotCached is the manager's error for an avatar that is not cached.
func NotCached(id string) *errcode.Error {
	return &errcode.Error{Code: errcode.AvatarAssetMissing, Phase: errcode.PhaseLocal, AvatarID: id,
		Reason: errcode.ReasonNotCached, Message: "avatar " + id + " is not cached"}
}

func (m *Manager) record(format string, args ...any) {
	if m.Quiet {
		return
	}
	m.mu.Lock()
	m.calls = append(m.calls, fmt.Sprintf(format, args...))
	m.mu.Unlock()
}

// Calls returns the calls so far and forgets them: the method's name, and
// for those that take an avatar ID or a count, a space and its arguments
// ("Clear rohan", "ClearLRU 2", "SetPinned rohan true").
func (m *Manager) Calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.calls
	m.calls = nil
	return c
}

// Put caches the avatars, replacing any of the same ID.
func (m *Manager) Put(avs ...apitype.Avatar) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.avatars == nil {
		m.avatars = map[string]apitype.Avatar{}
	}
	for _, a := range avs {
		m.avatars[a.AvatarID] = a
	}
}

// Cached returns the cached avatars' IDs, sorted.
func (m *Manager) Cached() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.avatars))
}

// SetLoads makes ls the loads in flight: listed by Loads, cancelled by
// CancelLoading and CancelAll.
func (m *Manager) SetLoads(ls ...apitype.Load) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.loads = slices.Clone(ls)
}

// Script makes evs the events of a load of id, in order: Load hands them
// to its caller one by one, then returns the avatar of a completed event
// or the error of a failed one, and caches a completed avatar.
func (m *Manager) Script(id string, evs ...apitype.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.scripts == nil {
		m.scripts = map[string][]apitype.Event{}
	}
	m.scripts[id] = slices.Clone(evs)
}

// Hang makes a load of id stay in flight after its scripted events, as a
// slow download does, until CancelLoading or CancelAll ends it: its caller
// waits until then or until it leaves. Started says when such a load has
// handed out its events.
func (m *Manager) Hang(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.hang == nil {
		m.hang = map[string]chan struct{}{}
	}
	m.hang[id] = make(chan struct{})
}

// Started receives the ID of each hanging load (Hang) once its scripted
// events are handed out.
func (m *Manager) Started() <-chan string { return m.startedCh() }

func (m *Manager) startedCh() chan string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started == nil {
		m.started = make(chan string, 16)
	}
	return m.started
}

// SetVerify makes res Verify's answers, by avatar ID; an avatar cached
// without one verifies as ready with every file checked.
func (m *Manager) SetVerify(res ...apitype.VerifyResult) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.verify == nil {
		m.verify = map[string]apitype.VerifyResult{}
	}
	for _, r := range res {
		m.verify[r.AvatarID] = r
	}
}

// SetEvents makes each subscription (GET /v1/events) get evs, then end.
// Without it a subscription stays open, silent, until its caller leaves.
func (m *Manager) SetEvents(evs ...apitype.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.events, m.eventsOn = slices.Clone(evs), true
}

// SetStats makes st Stats' answer.
func (m *Manager) SetStats(st apitype.Stats) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stats = st
}

// Imports returns the imports taken so far, in order.
func (m *Manager) Imports() []Import {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.imports)
}

// SetSession records a session token and app ID: it is an
// api.Options.SetSession.
func (m *Manager) SetSession(token, appID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sessions = append(m.sessions, apitype.Session{SessionToken: token, AppID: appID})
	return nil
}

// Sessions returns what SetSession recorded, in order.
func (m *Manager) Sessions() []apitype.Session {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sessions)
}

func (m *Manager) cached(id string) (apitype.Avatar, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.avatars[id]
	return a, ok
}
