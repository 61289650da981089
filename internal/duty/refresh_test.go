package duty

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
)

// kinds is, for each call of id, whether it was a Refresh.
func (f *fakeLoader) kinds(id string) []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	var k []bool
	for _, c := range f.calls {
		if c.id == id {
			k = append(k, c.refresh)
		}
	}
	return k
}

// The first load of a listed avatar may be answered from a fresh cache;
// every later one (the refresh) revalidates with the origin, also after a
// failed refresh backed off. An avatar that failed its first load is still
// preloaded, not refreshed, on the retry.
func TestRefreshRevalidatesAfterTheFirstLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLoader()
		offline := &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Transient: true}
		f.errs["b"] = []error{offline}
		p := NewPreloader(f, Schedule{Avatars: []string{"a", "b"}, Interval: time.Hour}, quiet)
		p.jitter = func(time.Duration) time.Duration { return 0 }
		stop := runPreloader(t, p)
		defer stop()

		time.Sleep(time.Minute)
		synctest.Wait()
		f.mu.Lock()
		f.errs["a"] = []error{offline}
		f.mu.Unlock()
		time.Sleep(2*time.Hour + time.Minute)
		synctest.Wait()
		// a: loaded at 0, refresh at 1h fails, retried at 1h30s, refreshed at 2h30s.
		if got, want := f.callsOf("a"), []time.Duration{0, time.Hour, time.Hour + 30*time.Second, 2*time.Hour + 30*time.Second}; !slices.Equal(got, want) {
			t.Fatalf("a loaded at %v, want %v", got, want)
		}
		if got, want := f.kinds("a"), []bool{false, true, true, true}; !slices.Equal(got, want) {
			t.Errorf("a refreshes %v, want %v", got, want)
		}
		// b: first load fails, retried at 30s as a preload, then refreshed hourly.
		if got, want := f.callsOf("b"), []time.Duration{0, 30 * time.Second, time.Hour + 30*time.Second, 2*time.Hour + 30*time.Second}; !slices.Equal(got, want) {
			t.Fatalf("b loaded at %v, want %v", got, want)
		}
		if got, want := f.kinds("b"), []bool{false, false, true, true}; !slices.Equal(got, want) {
			t.Errorf("b refreshes %v, want %v", got, want)
		}

		// Dropped and listed again: a first load again.
		p.Update(Schedule{Avatars: []string{"b"}, Interval: time.Hour})
		synctest.Wait()
		p.Update(Schedule{Avatars: []string{"a", "b"}, Interval: time.Hour})
		synctest.Wait()
		if k := f.kinds("a"); len(k) != 5 || k[4] {
			t.Errorf("a listed again: calls %v, want a last Preload", k)
		}
	})
}
