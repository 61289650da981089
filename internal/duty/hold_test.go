package duty

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

// windowFrom is the window from+a to from+b in from's wall clock.
func windowFrom(from time.Time, a, b time.Duration) Window {
	minute := func(t time.Time) int { return t.Hour()*60 + t.Minute() }
	return Window{Start: minute(from.Add(a)), End: minute(from.Add(b))}
}

// Periodic refreshes fall inside the window; the first load of an avatar
// not cached yet is not held, and a cached one is pinned without a load.
func TestRefreshWindowHoldsRefreshes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLoader()
		f.cached = map[string]bool{"cached": true}
		w := windowFrom(f.start, 3*time.Hour, 5*time.Hour)
		p := NewPreloader(f, Schedule{Avatars: []string{"new", "cached"}, Interval: time.Hour, Windows: []Window{w}}, quiet)
		p.jitter = func(d time.Duration) time.Duration { return d / 2 }
		stop := runPreloader(t, p)
		defer stop()

		synctest.Wait()
		if h := p.Held(time.Now()); !h.OutsideWindow || !h.Until.Equal(f.start.Add(3*time.Hour)) || h.Metered {
			t.Errorf("Held = %+v, want outside the window until +3h", h)
		}
		time.Sleep(30 * time.Hour)
		synctest.Wait()
		if got, want := f.callsOf("new"), []time.Duration{0, 4 * time.Hour, 28 * time.Hour}; !slices.Equal(got, want) {
			t.Errorf("new loaded at %v, want %v", got, want)
		}
		if got, want := f.kinds("new"), []bool{false, true, true}; !slices.Equal(got, want) {
			t.Errorf("new refreshes %v, want %v", got, want)
		}
		if got, want := f.callsOf("cached"), []time.Duration{4 * time.Hour, 28 * time.Hour}; !slices.Equal(got, want) {
			t.Errorf("cached loaded at %v, want %v (pinned at start, no load)", got, want)
		}
		f.mu.Lock()
		pinned := slices.Clone(f.pinned)
		f.mu.Unlock()
		if !slices.Equal(pinned, []string{"cached"}) {
			t.Errorf("pinned %v, want [cached]", pinned)
		}
	})
}

// A metered link holds refreshes (not the first fetch of an avatar not
// cached yet); they run as soon as it is unmetered, with no polling.
func TestMeteredLinkHoldsRefreshes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLoader()
		f.cached = map[string]bool{"cached": true}
		p := NewPreloader(f, Schedule{Avatars: []string{"new", "cached"}, Interval: time.Hour}, quiet)
		p.jitter = func(time.Duration) time.Duration { return 0 }
		p.SetMetered(true)
		stop := runPreloader(t, p)
		defer stop()

		time.Sleep(3 * time.Hour)
		synctest.Wait()
		if got := f.callsOf("new"); !slices.Equal(got, []time.Duration{0}) {
			t.Errorf("new loaded at %v on a metered link, want its first fetch only", got)
		}
		if got := f.callsOf("cached"); len(got) != 0 {
			t.Errorf("cached loaded at %v on a metered link", got)
		}
		if h := p.Held(time.Now()); !h.Metered || h.OutsideWindow {
			t.Errorf("Held = %+v, want metered", h)
		}
		p.SetMetered(false)
		synctest.Wait()
		want := []time.Duration{0, 3 * time.Hour}
		if got := f.callsOf("new"); !slices.Equal(got, want) {
			t.Errorf("new loaded at %v, want %v", got, want)
		}
		if got := f.kinds("cached"); !slices.Equal(got, []bool{true}) {
			t.Errorf("cached: %v, want one refresh when unmetered", got)
		}
		if h := p.Held(time.Now()); h.Metered {
			t.Errorf("Held = %+v after the link became unmetered", h)
		}
	})
}

func TestBackgroundOnMeteredRefreshes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLoader()
		p := NewPreloader(f, Schedule{Avatars: []string{"a"}, Interval: time.Hour, BackgroundOnMetered: true}, quiet)
		p.jitter = func(time.Duration) time.Duration { return 0 }
		p.SetMetered(true)
		stop := runPreloader(t, p)
		defer stop()
		time.Sleep(90 * time.Minute)
		synctest.Wait()
		if got := f.callsOf("a"); !slices.Equal(got, []time.Duration{0, time.Hour}) {
			t.Errorf("a loaded at %v, want hourly despite the metered link", got)
		}
		if h := p.Held(time.Now()); h.Metered {
			t.Errorf("Held = %+v with background_on_metered", h)
		}
	})
}

// A refresh held by a metered link past the end of its window waits for
// the next window, not for the link alone.
func TestMeteredPastTheWindowWaitsForTheNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFakeLoader()
		w := windowFrom(f.start, 2*time.Hour, 4*time.Hour)
		p := NewPreloader(f, Schedule{Avatars: []string{"a"}, Interval: time.Hour, Windows: []Window{w}}, quiet)
		p.jitter = func(d time.Duration) time.Duration { return d / 2 }
		stop := runPreloader(t, p)
		defer stop()
		synctest.Wait()
		p.SetMetered(true)
		time.Sleep(5 * time.Hour)
		p.SetMetered(false)
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := f.callsOf("a"); !slices.Equal(got, []time.Duration{0}) {
			t.Fatalf("a loaded at %v; the refresh held past its window ran outside it", got)
		}
		time.Sleep(24 * time.Hour)
		synctest.Wait()
		if got := f.callsOf("a"); !slices.Equal(got, []time.Duration{0, 27 * time.Hour}) {
			t.Errorf("a loaded at %v, want in the next day's window", got)
		}
	})
}

func TestNothingHeldWithoutRefreshes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := windowFrom(time.Now(), 3*time.Hour, 5*time.Hour)
		for _, s := range []Schedule{
			{Interval: time.Hour, Windows: []Window{w}},
			{Avatars: []string{"a"}, Windows: []Window{w}},
		} {
			p := NewPreloader(newFakeLoader(), s, quiet)
			p.SetMetered(true)
			if h := p.Held(time.Now()); h != (Hold{}) {
				t.Errorf("%+v: Held = %+v, want nothing held", s, h)
			}
		}
	})
}
