package api_test

import (
	"context"
	"io"
	"sync"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/errs"
)

// fakeManager is a hand-written api.Manager: each method records its call
// and runs its function field, or answers "not cached" when that is nil.
type fakeManager struct {
	mu    sync.Mutex
	calls []string
	quiet bool // record nothing (benchmarks)

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
}

var _ api.Manager = (*fakeManager)(nil)

func (f *fakeManager) record(name string) {
	if f.quiet {
		return
	}
	f.mu.Lock()
	f.calls = append(f.calls, name)
	f.mu.Unlock()
}

// Calls returns the calls so far and forgets them.
func (f *fakeManager) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func notCached(id string) error {
	return &errs.Error{Code: errs.AvatarAssetMissing, Reason: errs.ReasonNotCached, AvatarID: id,
		Phase: errs.PhaseLocal, Message: id + " is not cached"}
}

func (f *fakeManager) Load(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
	f.record("Load")
	if f.LoadFn != nil {
		return f.LoadFn(ctx, id, o)
	}
	return nil, notCached(id)
}

func (f *fakeManager) Start(_ context.Context, id string, o api.LoadOptions) (apitype.Load, *apitype.Avatar, error) {
	f.record("Start")
	if f.StartFn != nil {
		return f.StartFn(id, o)
	}
	return apitype.Load{}, nil, notCached(id)
}

func (f *fakeManager) Retrieve(id string) (*apitype.Avatar, error) {
	f.record("Retrieve")
	if f.RetrieveFn != nil {
		return f.RetrieveFn(id)
	}
	return nil, notCached(id)
}

func (f *fakeManager) Import(ctx context.Context, id string, r io.Reader, o api.ImportOptions) (*apitype.Avatar, error) {
	f.record("Import")
	if f.ImportFn != nil {
		return f.ImportFn(ctx, id, r, o)
	}
	return nil, notCached(id)
}

func (f *fakeManager) CancelLoading(id string) bool {
	f.record("CancelLoading")
	return f.CancelLoadingFn != nil && f.CancelLoadingFn(id)
}

func (f *fakeManager) CancelAll() []string {
	f.record("CancelAll")
	if f.CancelAllFn != nil {
		return f.CancelAllFn()
	}
	return nil
}

func (f *fakeManager) Clear(id string) error {
	f.record("Clear")
	if f.ClearFn != nil {
		return f.ClearFn(id)
	}
	return notCached(id)
}

func (f *fakeManager) ClearAll() ([]string, error) {
	f.record("ClearAll")
	if f.ClearAllFn != nil {
		return f.ClearAllFn()
	}
	return nil, nil
}

func (f *fakeManager) ClearLRU(keep int) ([]string, error) {
	f.record("ClearLRU")
	if f.ClearLRUFn != nil {
		return f.ClearLRUFn(keep)
	}
	return nil, nil
}

func (f *fakeManager) CacheSize(id string) (int64, error) {
	f.record("CacheSize")
	if f.CacheSizeFn != nil {
		return f.CacheSizeFn(id)
	}
	return 0, notCached(id)
}

func (f *fakeManager) Stats() apitype.Stats {
	f.record("Stats")
	if f.StatsFn != nil {
		return f.StatsFn()
	}
	return apitype.Stats{}
}

func (f *fakeManager) EachCached(yield func(*apitype.Avatar) bool) {
	f.record("List")
	if f.ListFn == nil {
		return
	}
	for _, a := range f.ListFn().Avatars {
		if !yield(&a) {
			return
		}
	}
}

func (f *fakeManager) Loads() []apitype.Load {
	if f.ListFn != nil {
		return f.ListFn().Loads
	}
	return nil
}

func (f *fakeManager) Verify(ctx context.Context, id string) (apitype.VerifyResult, error) {
	f.record("Verify")
	if f.VerifyFn != nil {
		return f.VerifyFn(ctx, id)
	}
	return apitype.VerifyResult{}, notCached(id)
}

func (f *fakeManager) SetPinned(id string, pinned bool) error {
	f.record("SetPinned")
	if f.SetPinnedFn != nil {
		return f.SetPinnedFn(id, pinned)
	}
	return notCached(id)
}

func (f *fakeManager) RetryAuthFailed() {
	f.record("RetryAuthFailed")
	if f.RetryAuthFailedFn != nil {
		f.RetryAuthFailedFn()
	}
}

func (f *fakeManager) Subscribe() (<-chan apitype.Event, func()) {
	f.record("Subscribe")
	if f.SubscribeFn != nil {
		return f.SubscribeFn()
	}
	ch := make(chan apitype.Event)
	return ch, func() {}
}
