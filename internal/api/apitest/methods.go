package apitest

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/api"
)

// Completed is the event that ends a load of a: the manager's, which the
// API passes on as it is.
func Completed(a *apitype.Avatar) apitype.Event {
	return apitype.Event{Type: apitype.EventCompleted, AvatarID: a.AvatarID, State: apitype.StateCompleted,
		Progress: 1, BytesDone: a.SizeBytes, BytesTotal: a.SizeBytes, Avatar: a}
}

// Failed is the event that ends a failed load of id.
func Failed(id string, e *errcode.Error) apitype.Event {
	b := e.WithAvatar(id).Body()
	return apitype.Event{Type: apitype.EventFailed, AvatarID: id, State: apitype.StateFailed, Error: &b}
}

func terminal(ev apitype.Event) bool {
	return ev.Type == apitype.EventCompleted || ev.Type == apitype.EventFailed
}

// Load runs LoadFn, or the script of id (Script, Hang). Unscripted, a
// cached avatar completes at once and any other is not cached. Every
// scripted load ends with its own completed or failed event, as the
// manager's do.
func (m *Manager) Load(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
	m.record("Load %s", id)
	if m.LoadFn != nil {
		return m.LoadFn(ctx, id, o)
	}
	m.mu.Lock()
	evs, scripted := m.scripts[id]
	hang := m.hang[id]
	cached, isCached := m.avatars[id]
	if hang != nil && !slices.ContainsFunc(m.loads, func(l apitype.Load) bool { return l.AvatarID == id }) {
		m.loads = append(m.loads, apitype.Load{AvatarID: id, State: apitype.StateDownloading})
	}
	m.mu.Unlock()
	if !scripted && hang == nil {
		if isCached {
			evs = []apitype.Event{Completed(&cached)}
		} else {
			evs = []apitype.Event{Failed(id, NotCached(id))}
		}
	}
	for _, ev := range evs {
		m.send(ctx, o, ev)
		if terminal(ev) {
			return m.result(ev)
		}
	}
	if hang == nil {
		return nil, fmt.Errorf("apitest: the script of %s has no completed or failed event", id)
	}
	select {
	case m.startedCh() <- id:
	default:
	}
	select {
	case <-ctx.Done():
		// The caller left; the load stays in flight, as the daemon's do.
		return nil, &errcode.Error{Code: errcode.Cancelled, Phase: errcode.PhaseLocal, AvatarID: id, Message: "cancelled", Err: ctx.Err()}
	case <-hang:
		ev := Failed(id, &errcode.Error{Code: errcode.Cancelled, Phase: errcode.PhaseLocal, Message: "cancelled"})
		m.send(ctx, o, ev)
		return m.result(ev)
	}
}

func (m *Manager) send(ctx context.Context, o api.LoadOptions, ev apitype.Event) {
	if o.Progress != nil {
		o.Progress(ev)
	}
	if m.Delivered != nil {
		m.Delivered(ctx, ev)
	}
}

// result is what Load returns after the terminal event ev; a completed
// avatar is cached.
func (m *Manager) result(ev apitype.Event) (*apitype.Avatar, error) {
	if ev.Type == apitype.EventFailed {
		if ev.Error == nil {
			return nil, errors.New("apitest: a failed event without an error")
		}
		return nil, ev.Error.Err()
	}
	if ev.Avatar == nil {
		return nil, errors.New("apitest: a completed event without an avatar")
	}
	m.Put(*ev.Avatar)
	a := *ev.Avatar
	return &a, nil
}

// Start runs StartFn; otherwise a cached avatar is returned as it is, a
// scripted one starts loading (in name only: the script runs on Load) and
// any other is not cached.
func (m *Manager) Start(_ context.Context, id string, o api.LoadOptions) (apitype.Load, *apitype.Avatar, error) {
	m.record("Start %s", id)
	if m.StartFn != nil {
		return m.StartFn(id, o)
	}
	if a, ok := m.cached(id); ok {
		return apitype.Load{}, &a, nil
	}
	m.mu.Lock()
	_, scripted := m.scripts[id]
	m.mu.Unlock()
	if scripted {
		return apitype.Load{AvatarID: id, State: apitype.StateDownloading, Background: o.Background}, nil, nil
	}
	return apitype.Load{}, nil, NotCached(id)
}

// Retrieve runs RetrieveFn, or returns the cached avatar.
func (m *Manager) Retrieve(id string) (*apitype.Avatar, error) {
	m.record("Retrieve %s", id)
	if m.RetrieveFn != nil {
		return m.RetrieveFn(id)
	}
	if a, ok := m.cached(id); ok {
		return &a, nil
	}
	return nil, NotCached(id)
}

// maxImportFile bounds one file of a scripted import.
const maxImportFile = 1 << 20

// Import runs ImportFn; otherwise it reads the tar stream, records it
// (Imports) and caches the avatar, as the manager does: its version is
// o.Version or the stream's VERSION file, and an avatar cached from the
// origin is replaced only with o.Force.
func (m *Manager) Import(ctx context.Context, id string, r io.Reader, o api.ImportOptions) (*apitype.Avatar, error) {
	m.record("Import %s", id)
	if m.ImportFn != nil {
		return m.ImportFn(ctx, id, r, o)
	}
	if cur, ok := m.cached(id); ok && cur.Source == "origin" && !o.Force {
		return nil, &errcode.Error{Code: errcode.BadRequest, Phase: errcode.PhaseLocal, AvatarID: id, Reason: errcode.ReasonForceRequired,
			Message: fmt.Sprintf("import: %s is cached from the origin (version %s); importing would replace it: repeat with --force (API: ?force=true)", id, cur.Version)}
	}
	in := Import{AvatarID: id, Version: o.Version, Force: o.Force}
	a := apitype.Avatar{AvatarID: id, Version: o.Version, State: apitype.StateReady, Source: "import"}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err == nil && (h.Typeflag != tar.TypeReg || h.Size > maxImportFile) {
			err = fmt.Errorf("entry %q is not a regular file of at most %d bytes", h.Name, maxImportFile)
		}
		if err != nil {
			return nil, &errcode.Error{Code: errcode.BadRequest, Phase: errcode.PhaseLocal, AvatarID: id, Message: "import: bad tar stream: " + err.Error()}
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, &errcode.Error{Code: errcode.BadRequest, Phase: errcode.PhaseLocal, AvatarID: id, Message: "import: " + err.Error()}
		}
		in.Files = append(in.Files, h.Name+"="+string(b))
		if h.Name == "VERSION" {
			a.Version = strings.TrimSpace(string(b))
			continue
		}
		sum := sha256.Sum256(b)
		a.Assets = append(a.Assets, apitype.Asset{Path: h.Name, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])})
		a.SizeBytes += int64(len(b))
	}
	if a.Version == "" {
		a.Version = "local-1"
	}
	m.mu.Lock()
	m.imports = append(m.imports, in)
	m.mu.Unlock()
	m.Put(a)
	return &a, nil
}

// CancelLoading runs CancelLoadingFn; otherwise it ends the load of id in
// flight (SetLoads, Hang), if any.
func (m *Manager) CancelLoading(id string) bool {
	m.record("CancelLoading %s", id)
	if m.CancelLoadingFn != nil {
		return m.CancelLoadingFn(id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.loads)
	m.loads = slices.DeleteFunc(m.loads, func(l apitype.Load) bool { return l.AvatarID == id })
	m.endHang(id)
	return len(m.loads) < n
}

// endHang ends the hanging load of id; m.mu is held.
func (m *Manager) endHang(id string) {
	if ch := m.hang[id]; ch != nil {
		close(ch)
		delete(m.hang, id)
	}
}

// CancelAll runs CancelAllFn; otherwise it ends every load in flight and
// returns their IDs.
func (m *Manager) CancelAll() []string {
	m.record("CancelAll")
	if m.CancelAllFn != nil {
		return m.CancelAllFn()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	for _, l := range m.loads {
		ids = append(ids, l.AvatarID)
		m.endHang(l.AvatarID)
	}
	m.loads = nil
	return ids
}

// Clear runs ClearFn, or removes the cached avatar.
func (m *Manager) Clear(id string) error {
	m.record("Clear %s", id)
	if m.ClearFn != nil {
		return m.ClearFn(id)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.avatars[id]; !ok {
		return NotCached(id)
	}
	delete(m.avatars, id)
	return nil
}

// ClearAll runs ClearAllFn, or removes every cached avatar and returns
// their IDs, sorted.
func (m *Manager) ClearAll() ([]string, error) {
	m.record("ClearAll")
	if m.ClearAllFn != nil {
		return m.ClearAllFn()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := slices.Sorted(maps.Keys(m.avatars))
	clear(m.avatars)
	return ids, nil
}

// ClearLRU runs ClearLRUFn; otherwise it keeps the keep most recently
// used avatars, pinned ones always and counted among them, as the store
// does, and returns the IDs removed, sorted.
func (m *Manager) ClearLRU(keep int) ([]string, error) {
	m.record("ClearLRU %d", keep)
	if m.ClearLRUFn != nil {
		return m.ClearLRUFn(keep)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	byUse := slices.SortedFunc(maps.Values(m.avatars), func(a, b apitype.Avatar) int {
		if c := b.LastUsed.Compare(a.LastUsed); c != 0 {
			return c
		}
		return strings.Compare(a.AvatarID, b.AvatarID)
	})
	kept := 0
	for _, a := range byUse {
		if a.Pinned {
			kept++
		}
	}
	var removed []string
	for _, a := range byUse {
		switch {
		case a.Pinned:
		case kept < keep:
			kept++
		default:
			delete(m.avatars, a.AvatarID)
			removed = append(removed, a.AvatarID)
		}
	}
	slices.Sort(removed)
	return removed, nil
}

// CacheSize runs CacheSizeFn, or returns the cached avatar's size.
func (m *Manager) CacheSize(id string) (int64, error) {
	m.record("CacheSize %s", id)
	if m.CacheSizeFn != nil {
		return m.CacheSizeFn(id)
	}
	if a, ok := m.cached(id); ok {
		return a.SizeBytes, nil
	}
	return 0, NotCached(id)
}

// Stats runs StatsFn, or returns what SetStats set.
func (m *Manager) Stats() apitype.Stats {
	m.record("Stats")
	if m.StatsFn != nil {
		return m.StatsFn()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stats
}

// EachCached yields ListFn's avatars, or the cached ones, by ID.
func (m *Manager) EachCached(yield func(*apitype.Avatar) bool) {
	m.record("List")
	var avs []apitype.Avatar
	if m.ListFn != nil {
		avs = m.ListFn().Avatars
	} else {
		m.mu.Lock()
		avs = slices.SortedFunc(maps.Values(m.avatars), func(a, b apitype.Avatar) int { return strings.Compare(a.AvatarID, b.AvatarID) })
		m.mu.Unlock()
	}
	for _, a := range avs {
		if !yield(&a) {
			return
		}
	}
}

// Loads returns ListFn's loads, or the loads in flight.
func (m *Manager) Loads() []apitype.Load {
	if m.ListFn != nil {
		return m.ListFn().Loads
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.loads)
}

// Verify runs VerifyFn; otherwise it returns the SetVerify answer of id,
// or, for a cached avatar without one, ready with every file checked.
func (m *Manager) Verify(ctx context.Context, id string) (apitype.VerifyResult, error) {
	m.record("Verify %s", id)
	if m.VerifyFn != nil {
		return m.VerifyFn(ctx, id)
	}
	m.mu.Lock()
	res, ok := m.verify[id]
	a, cached := m.avatars[id]
	m.mu.Unlock()
	switch {
	case ok:
		return res, nil
	case cached:
		return apitype.VerifyResult{AvatarID: id, State: apitype.StateReady, Checked: len(a.Assets)}, nil
	}
	return apitype.VerifyResult{}, NotCached(id)
}

// SetPinned runs SetPinnedFn, or pins or unpins the cached avatar.
func (m *Manager) SetPinned(id string, pinned bool) error {
	m.record("SetPinned %s %t", id, pinned)
	if m.SetPinnedFn != nil {
		return m.SetPinnedFn(id, pinned)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.avatars[id]
	if !ok {
		return NotCached(id)
	}
	a.Pinned = pinned
	m.avatars[id] = a
	return nil
}

// RetryAuthFailed runs RetryAuthFailedFn, if set.
func (m *Manager) RetryAuthFailed() {
	m.record("RetryAuthFailed")
	if m.RetryAuthFailedFn != nil {
		m.RetryAuthFailedFn()
	}
}

// Subscribe runs SubscribeFn; otherwise the subscription gets the events
// of SetEvents and ends, or without them stays open until cancelled.
func (m *Manager) Subscribe() (<-chan apitype.Event, func()) {
	m.record("Subscribe")
	if m.SubscribeFn != nil {
		return m.SubscribeFn()
	}
	m.mu.Lock()
	evs, on := m.events, m.eventsOn
	m.mu.Unlock()
	if !on {
		return make(chan apitype.Event), func() {}
	}
	ch := make(chan apitype.Event, len(evs))
	for _, ev := range evs {
		ch <- ev
	}
	close(ch)
	return ch, func() {}
}
