package duty

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
)

type call struct {
	id      string
	at      time.Duration // since the test's start
	refresh bool          // Refresh rather than Preload
}

// fakeLoader records preloads and answers with the error queued for an ID.
type fakeLoader struct {
	start  time.Time
	mu     sync.Mutex
	calls  []call
	errs   map[string][]error
	unpin  []string
	cached map[string]bool // PinCached's answer
	pinned []string
}

func newFakeLoader() *fakeLoader {
	return &fakeLoader{start: time.Now(), errs: map[string][]error{}}
}

func (f *fakeLoader) Preload(ctx context.Context, id string) error {
	return f.record(id, false)
}

func (f *fakeLoader) Refresh(ctx context.Context, id string) error {
	return f.record(id, true)
}

func (f *fakeLoader) record(id string, refresh bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{id, time.Since(f.start), refresh})
	if q := f.errs[id]; len(q) > 0 {
		f.errs[id] = q[1:]
		return q[0]
	}
	return nil
}

func (f *fakeLoader) Unpin(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.unpin = append(f.unpin, id)
	return nil
}

func (f *fakeLoader) PinCached(id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cached[id] {
		f.pinned = append(f.pinned, id)
	}
	return f.cached[id], nil
}

func (f *fakeLoader) callsOf(id string) []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var at []time.Duration
	for _, c := range f.calls {
		if c.id == id {
			at = append(at, c.at)
		}
	}
	return at
}

// runPreloader starts p in the bubble and returns a stop func that waits.
func runPreloader(t *testing.T, p *Preloader) func() {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = p.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

func TestPreloadAtStartThenRefreshWithJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLoader()
		p := NewPreloader(f, Schedule{Avatars: []string{"a", "b"}, Interval: 6 * time.Hour, Jitter: 30 * time.Minute}, quiet)
		p.jitter = func(d time.Duration) time.Duration { return d / 2 }
		stop := runPreloader(t, p)
		defer stop()

		synctest.Wait()
		if got := f.callsOf("a"); len(got) != 1 || got[0] != 0 {
			t.Fatalf("a loaded at %v, want once at start", got)
		}
		time.Sleep(6*time.Hour + 15*time.Minute - time.Second)
		synctest.Wait()
		if got := f.callsOf("b"); len(got) != 1 {
			t.Fatalf("b refreshed early: %v", got)
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		want := []time.Duration{0, 6*time.Hour + 15*time.Minute}
		if got := f.callsOf("b"); !slices.Equal(got, want) {
			t.Fatalf("b loaded at %v, want %v", got, want)
		}
	})
}

func TestJitterSpreadsAFleet(t *testing.T) {
	const interval, jitter = 6 * time.Hour, 30 * time.Minute
	seen := map[time.Duration]bool{}
	for range 50 {
		p := NewPreloader(newFakeLoader(), Schedule{Interval: interval, Jitter: jitter}, quiet)
		d := p.refreshAt(time.Time{}).Sub(time.Time{})
		if d < interval || d >= interval+jitter {
			t.Fatalf("refresh in %v, outside [%v, %v)", d, interval, interval+jitter)
		}
		seen[d] = true
	}
	if len(seen) < 40 {
		t.Errorf("only %d distinct refresh times for 50 devices", len(seen))
	}
}

func TestTransientFailureBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLoader()
		offline := &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Transient: true}
		f.errs["a"] = []error{offline, offline}
		p := NewPreloader(f, Schedule{Avatars: []string{"a"}, Interval: 6 * time.Hour}, quiet)
		p.jitter = func(time.Duration) time.Duration { return 0 }
		stop := runPreloader(t, p)
		defer stop()

		time.Sleep(7 * time.Hour)
		synctest.Wait()
		want := []time.Duration{0, 30 * time.Second, 90 * time.Second, 90*time.Second + 6*time.Hour}
		if got := f.callsOf("a"); !slices.Equal(got, want) {
			t.Fatalf("a loaded at %v, want %v", got, want)
		}
	})
}

func TestFinalFailureWaitsForTheNextRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLoader()
		f.errs["gone"] = []error{&errcode.Error{Code: errcode.AvatarIDUnrecognized}}
		p := NewPreloader(f, Schedule{Avatars: []string{"gone"}, Interval: time.Hour}, quiet)
		p.jitter = func(time.Duration) time.Duration { return 0 }
		stop := runPreloader(t, p)
		defer stop()
		time.Sleep(90 * time.Minute)
		synctest.Wait()
		if got := f.callsOf("gone"); !slices.Equal(got, []time.Duration{0, time.Hour}) {
			t.Fatalf("loaded at %v", got)
		}
	})
}

func TestUpdateAddsAndUnpins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLoader()
		p := NewPreloader(f, Schedule{Avatars: []string{"a", "b"}, Interval: time.Hour}, quiet)
		stop := runPreloader(t, p)
		defer stop()
		synctest.Wait()
		time.Sleep(time.Minute)
		p.Update(Schedule{Avatars: []string{"b", "c"}, Interval: time.Hour})
		synctest.Wait()
		if got := f.callsOf("c"); !slices.Equal(got, []time.Duration{time.Minute}) {
			t.Errorf("c loaded at %v, want at the update", got)
		}
		f.mu.Lock()
		unpinned := slices.Clone(f.unpin)
		f.mu.Unlock()
		if !slices.Equal(unpinned, []string{"a"}) {
			t.Errorf("unpinned %v, want [a]", unpinned)
		}
		if got := f.callsOf("b"); len(got) != 1 {
			t.Errorf("b reloaded by the update: %v", got)
		}
	})
}

type fakeVerifier struct {
	sizes map[string]int64
	mu    sync.Mutex
	at    []time.Duration
	start time.Time
}

func (f *fakeVerifier) Cached() map[string]int64 { return f.sizes }

func (f *fakeVerifier) times() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.at)
}

func (f *fakeVerifier) Verify(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.at = append(f.at, time.Since(f.start))
	if id == "bad" {
		return errors.New("damaged")
	}
	return nil
}

func TestScrubIsPeriodicAndPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &fakeVerifier{start: time.Now(), sizes: map[string]int64{"a": 32 << 20, "b": 32 << 20, "bad": 32 << 20}}
		s := &Scrubber{Verifier: v, Interval: time.Hour, BytesPerSecond: 32 << 20, Log: quiet}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); _ = s.Run(ctx) }()

		time.Sleep(time.Hour - time.Second)
		synctest.Wait()
		if at := v.times(); len(at) != 0 {
			t.Fatalf("scrubbed before the interval: %v", at)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		at := v.times()
		if len(at) != 3 {
			t.Fatalf("verified %d avatars, want 3", len(at))
		}
		// 96 MiB at 32 MiB/s: the third avatar starts 2 s after the first.
		if spread := at[2] - at[0]; spread < 2*time.Second {
			t.Errorf("scrub not paced: %v", at)
		}
		cancel()
		<-done
	})
}

func TestScrubNeverWhenIntervalZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		v := &fakeVerifier{start: time.Now(), sizes: map[string]int64{"a": 1}}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { defer close(done); _ = (&Scrubber{Verifier: v, Log: quiet}).Run(ctx) }()
		time.Sleep(1000 * time.Hour)
		synctest.Wait()
		cancel()
		<-done
		if at := v.times(); len(at) != 0 {
			t.Errorf("scrubbed with interval 0: %v", at)
		}
	})
}

var quiet = slog.New(slog.DiscardHandler)
