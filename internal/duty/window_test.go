package duty

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

func TestParseWindow(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Window
		err  string
	}{
		{in: "02:00-05:00", want: Window{120, 300}},
		{in: " 22:30-01:15 ", want: Window{22*60 + 30, 75}},
		{in: "23:00-00:00", want: Window{23 * 60, 0}},
		{in: "02:00", err: "not a range"},
		{in: "2:00-05:00", err: "not a time like 02:00"},
		{in: "24:00-05:00", err: "from 00:00 to 23:59"},
		{in: "02:60-05:00", err: "from 00:00 to 23:59"},
		{in: "02:00-0x:00", err: "from 00:00 to 23:59"},
		{in: "03:00-03:00", err: "starts where it ends"},
	} {
		got, err := ParseWindow(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseWindow(%q) = %v, %v; want an error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseWindow(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, _ := ParseWindow(got.String()); back != got {
			t.Errorf("%v does not round-trip through String", got)
		}
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s: %v (no tzdata?)", name, err)
	}
	return loc
}

func windows(t *testing.T, list ...string) []Window {
	t.Helper()
	ws, err := ParseWindows(list)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// Fixed shares: the start of the range, its middle, or its last instant.
var (
	shareNone = func(time.Duration) time.Duration { return 0 }
	shareHalf = func(d time.Duration) time.Duration { return d / 2 }
	shareLast = func(d time.Duration) time.Duration { return d - 1 }
)

func TestNext(t *testing.T) {
	utc := time.UTC
	ny := mustLoc(t, "America/New_York")
	at := func(loc *time.Location, s string) time.Time {
		t.Helper()
		v, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tc := range []struct {
		name     string
		last     time.Time
		interval time.Duration
		jitter   time.Duration
		windows  []string
		share    func(time.Duration) time.Duration
		want     time.Time
	}{
		{name: "no window: interval plus a share of the jitter",
			last: at(utc, "2026-06-01 10:00"), interval: 6 * time.Hour, jitter: 30 * time.Minute, share: shareHalf,
			want: at(utc, "2026-06-01 16:15")},
		{name: "no refresh", last: at(utc, "2026-06-01 10:00"), share: shareHalf,
			want: at(utc, "2026-06-01 10:00").Add(100 * 365 * 24 * time.Hour)},
		{name: "window later the next day: the jitter is not used",
			last: at(utc, "2026-06-01 10:00"), interval: 6 * time.Hour, jitter: 30 * time.Minute,
			windows: []string{"02:00-05:00"}, share: shareHalf,
			want: at(utc, "2026-06-02 03:30")},
		{name: "window later the same day",
			last: at(utc, "2026-06-01 01:00"), interval: time.Hour, windows: []string{"12:00-13:00"}, share: shareNone,
			want: at(utc, "2026-06-01 12:00")},
		{name: "the whole window, to its last instant",
			last: at(utc, "2026-06-01 10:00"), interval: 6 * time.Hour, windows: []string{"02:00-05:00"}, share: shareLast,
			want: at(utc, "2026-06-02 05:00").Add(-1)},
		{name: "window crossing midnight, drawn after midnight",
			last: at(utc, "2026-06-01 10:00"), interval: 6 * time.Hour, windows: []string{"22:00-04:00"}, share: shareHalf,
			want: at(utc, "2026-06-02 01:00")},
		{name: "window crossing midnight, still open at earliest from the day before",
			last: at(utc, "2026-06-01 20:00"), interval: 6 * time.Hour, windows: []string{"22:00-04:00"}, share: shareLast,
			want: at(utc, "2026-06-02 04:00").Add(-1)},
		{name: "earliest inside the window and the draw before it: the next day's window",
			last: at(utc, "2026-06-01 03:00"), interval: 24 * time.Hour, windows: []string{"02:00-05:00"}, share: shareNone,
			want: at(utc, "2026-06-03 02:00")},
		{name: "earliest inside the window and the draw after it",
			last: at(utc, "2026-06-01 03:00"), interval: 24 * time.Hour, windows: []string{"02:00-05:00"}, share: shareHalf,
			want: at(utc, "2026-06-02 03:30")},
		{name: "two windows: the first to open",
			last: at(utc, "2026-06-01 10:00"), interval: time.Hour, windows: []string{"02:00-05:00", "13:00-14:00"}, share: shareNone,
			want: at(utc, "2026-06-01 13:00")},
		{name: "DST spring forward: 01:30-03:30 is an hour long",
			last: at(ny, "2026-03-07 12:00"), interval: 6 * time.Hour, windows: []string{"01:30-03:30"}, share: shareLast,
			want: at(ny, "2026-03-08 03:30").Add(-1)},
		{name: "DST spring forward: a window wholly in the gap opens the next day",
			last: at(ny, "2026-03-07 12:00"), interval: 6 * time.Hour, windows: []string{"02:10-02:50"}, share: shareNone,
			want: at(ny, "2026-03-09 02:10")},
		{name: "DST fall back: 01:00-02:00 is two hours long",
			last: at(ny, "2026-10-31 12:00"), interval: 6 * time.Hour, windows: []string{"01:00-02:00"}, share: shareLast,
			want: at(ny, "2026-11-01 02:00").Add(-1)},
		{name: "DST fall back: the middle of 01:00-02:00 is the second 01:00",
			last: at(ny, "2026-10-31 12:00"), interval: 6 * time.Hour, windows: []string{"01:00-02:00"}, share: shareHalf,
			want: at(ny, "2026-11-01 01:00").Add(time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Schedule{Interval: tc.interval, Jitter: tc.jitter, Windows: windows(t, tc.windows...)}
			got := Next(tc.last, s, tc.share)
			if !got.Equal(tc.want) {
				t.Errorf("Next = %v, want %v", got, tc.want)
			}
			if got.Before(tc.last.Add(tc.interval)) {
				t.Errorf("Next = %v, before last + interval", got)
			}
		})
	}
}

// A fleet that refreshed at random times spreads over the whole window:
// each quarter of it gets about a quarter of the devices.
func TestNextSpreadsAFleetOverTheWindow(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	share := func(d time.Duration) time.Duration { return time.Duration(r.Int64N(int64(d))) }
	s := Schedule{Interval: 6 * time.Hour, Windows: windows(t, "02:00-05:00")}
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	const devices = 4000
	var quarters [4]int
	for range devices {
		last := day.Add(time.Duration(r.Int64N(int64(12 * time.Hour))))
		next := Next(last, s, share)
		off := next.Sub(day.AddDate(0, 0, 1).Add(2 * time.Hour))
		if off < 0 || off >= 3*time.Hour {
			t.Fatalf("refresh at %v, outside the window", next)
		}
		quarters[off/(45*time.Minute)]++
	}
	for i, n := range quarters {
		if n < devices/4*8/10 || n > devices/4*12/10 {
			t.Errorf("quarter %d of the window has %d of %d devices: %v", i, n, devices, quarters)
		}
	}
}

func TestHeld(t *testing.T) {
	ws := windows(t, "22:00-02:00")
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		at    time.Duration
		held  bool
		until time.Duration
	}{
		{at: time.Hour},
		{at: 2 * time.Hour, held: true, until: 22 * time.Hour},
		{at: 12 * time.Hour, held: true, until: 22 * time.Hour},
		{at: 22 * time.Hour},
		{at: 23*time.Hour + 59*time.Minute},
	} {
		until, held := Held(day.Add(tc.at), ws)
		if held != tc.held || (held && !until.Equal(day.Add(tc.until))) {
			t.Errorf("Held(+%v) = %v, %v; want %v, +%v", tc.at, until, held, tc.held, tc.until)
		}
	}
	if _, held := Held(day, nil); held {
		t.Error("no window held work")
	}
}
