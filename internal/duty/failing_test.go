package duty

import (
	"maps"
	"testing"
	"testing/synctest"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
)

// TestFailingCountsLatestAttemptByCode: an avatar counts under the code of
// its latest failure until an attempt succeeds or it leaves the list; a
// cancelled attempt changes nothing.
func TestFailingCountsLatestAttemptByCode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLoader()
		expired := &errcode.Error{Code: errcode.SessionTokenExpired}
		offline := &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Transient: true}
		f.errs["a"] = []error{expired}
		f.errs["b"] = []error{offline, &errcode.Error{Code: errcode.Cancelled}}
		f.errs["c"] = []error{expired, expired}
		p := NewPreloader(f, Schedule{Avatars: []string{"a", "b", "c", "d"}, Interval: time.Hour}, quiet)
		p.jitter = func(time.Duration) time.Duration { return 0 }
		stop := runPreloader(t, p)
		defer stop()

		synctest.Wait()
		want := map[string]int{"sessionTokenExpired": 2, "failedToFetchAvatarMetadata": 1}
		if got := p.Failing(); !maps.Equal(got, want) {
			t.Fatalf("at start: failing %v, want %v", got, want)
		}
		time.Sleep(31 * time.Second) // b retries and is cancelled: still failing as before
		synctest.Wait()
		if got := p.Failing(); !maps.Equal(got, want) {
			t.Fatalf("after a cancelled retry: failing %v, want %v", got, want)
		}
		p.Update(Schedule{Avatars: []string{"a", "b"}, Interval: time.Hour}) // c leaves the list
		synctest.Wait()
		time.Sleep(time.Hour + time.Minute) // a and b succeed at their next attempts
		synctest.Wait()
		if got := p.Failing(); len(got) != 0 {
			t.Fatalf("after successes: failing %v, want none", got)
		}
	})
}

// TestFailingUnchangedWhileHeld: a cached avatar pinned without a request
// because a metered link holds background work did not fail.
func TestFailingUnchangedWhileHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLoader()
		f.cached = map[string]bool{"a": true}
		p := NewPreloader(f, Schedule{Avatars: []string{"a"}, Interval: time.Hour}, quiet)
		p.SetMetered(true)
		stop := runPreloader(t, p)
		defer stop()
		synctest.Wait()
		if got := p.Failing(); len(got) != 0 {
			t.Fatalf("a held, cached avatar counts as failing: %v", got)
		}
		if h := p.Held(time.Now()); !h.Metered {
			t.Fatalf("not held: %+v", h)
		}
	})
}
