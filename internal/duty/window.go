package duty

import (
	"fmt"
	"strings"
	"time"
)

// Window is a daily range of local clock time, [Start, End), in minutes
// since midnight. End <= Start crosses midnight: 22:00-02:00 runs from 22:00
// one day to 02:00 the next. A range as long as the day is not a Window:
// it is what no window at all means.
type Window struct {
	Start, End int // minutes since midnight, 0 to 1439
}

// ParseWindow reads "HH:MM-HH:MM" (24-hour local time).
func ParseWindow(s string) (Window, error) {
	if len(s) > 32 {
		return Window{}, fmt.Errorf("%q... is not a range like \"02:00-05:00\"", s[:16])
	}
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return Window{}, fmt.Errorf("%q is not a range like \"02:00-05:00\"", s)
	}
	start, err := parseClock(a)
	if err != nil {
		return Window{}, fmt.Errorf("%q: %w", s, err)
	}
	end, err := parseClock(b)
	if err != nil {
		return Window{}, fmt.Errorf("%q: %w", s, err)
	}
	if start == end {
		return Window{}, fmt.Errorf("%q starts where it ends (leave the list empty for any time)", s)
	}
	return Window{Start: start, End: end}, nil
}

// ParseWindows reads a list of ranges; an empty list is any time.
func ParseWindows(list []string) ([]Window, error) {
	ws := make([]Window, 0, len(list))
	for _, s := range list {
		w, err := ParseWindow(s)
		if err != nil {
			return nil, err
		}
		ws = append(ws, w)
	}
	return ws, nil
}

func parseClock(s string) (int, error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not a time like 02:00", s)
	}
	if _, err := fmt.Sscanf(s, "%2d:%2d", &h, &m); err != nil || h < 0 || h > 23 || m < 0 || m > 59 {
		return 0, fmt.Errorf("%q is not a time from 00:00 to 23:59", s)
	}
	return h*60 + m, nil
}

func (w Window) String() string {
	return fmt.Sprintf("%02d:%02d-%02d:%02d", w.Start/60, w.Start%60, w.End/60, w.End%60)
}

// on is w's occurrence that starts on the calendar day of day, in day's
// location. Start and end are wall-clock times of that location, so a DST
// change inside a window lengthens or shortens it by the change, and a
// window that falls wholly in a spring-forward gap is empty that day.
func (w Window) on(day time.Time) (start, end time.Time) {
	y, m, d := day.Date()
	start = wallClock(y, m, d, w.Start, day.Location())
	if w.End <= w.Start {
		d++
	}
	return start, wallClock(y, m, d, w.End, day.Location())
}

// wallClock is the instant the clocks of loc show minute of the day y-m-d;
// for a minute that day skips (a spring-forward gap), the instant the
// clocks jump, which time.Date does not choose reliably.
func wallClock(y int, m time.Month, d, minute int, loc *time.Location) time.Time {
	t := time.Date(y, m, d, minute/60, minute%60, 0, 0, loc)
	want := time.Date(y, m, d, minute/60, minute%60, 0, 0, time.UTC)
	shown := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
	if shown.Equal(want) {
		return t
	}
	zoneStart, zoneEnd := t.ZoneBounds()
	if shown.Before(want) {
		return zoneEnd // normalised back, before the jump
	}
	return zoneStart
}

// nextOpen is the first occurrence of any of ws that ends after t: the
// window t is in, or the next to open. ok is false when ws is empty.
func nextOpen(t time.Time, ws []Window) (start, end time.Time, ok bool) {
	// Yesterday's occurrence may still be open (it crosses midnight); two
	// days on is always enough for one to open after t.
	for off := -1; off <= 2; off++ {
		day := t.AddDate(0, 0, off)
		for _, w := range ws {
			s, e := w.on(day)
			if !e.After(t) || !e.After(s) {
				continue
			}
			if !ok || s.Before(start) {
				start, end, ok = s, e, true
			}
		}
	}
	return start, end, ok
}

// Held says whether t is outside every window of ws, and if so when the
// next one opens. No window at all holds nothing.
func Held(t time.Time, ws []Window) (until time.Time, held bool) {
	start, _, ok := nextOpen(t, ws)
	if !ok || !start.After(t) {
		return time.Time{}, false
	}
	return start, true
}

// Next is when an avatar last refreshed at last is next refreshed under s:
// last + Interval + a random share of Jitter; or, with refresh windows, a
// time drawn uniformly across the whole of the first window that ends
// after last + Interval, so that the devices of a fleet spread over the
// window rather than crowd its opening. A draw that falls before
// last + Interval (the window was already open then) is drawn again in the
// next window: each refresh is uniform over its window, and no two are
// closer than Interval. The windows are read in last's location.
//
// share returns a uniformly random duration in [0, d) (d > 0). Next is a
// pure function of its arguments: the simulation in bench/fleet runs it
// for a fleet in virtual time.
func Next(last time.Time, s Schedule, share func(time.Duration) time.Duration) time.Time {
	if s.Interval <= 0 {
		return last.Add(100 * 365 * 24 * time.Hour) // never, in practice
	}
	earliest := last.Add(s.Interval)
	if len(s.Windows) == 0 {
		j := time.Duration(0)
		if s.Jitter > 0 {
			j = share(s.Jitter)
		}
		return earliest.Add(j)
	}
	return inWindow(earliest, s.Windows, share)
}

// inWindow is a time drawn uniformly across the first window that ends
// after earliest, not before earliest (see Next).
func inWindow(earliest time.Time, ws []Window, share func(time.Duration) time.Duration) time.Time {
	from := earliest
	for range 4 {
		start, end, ok := nextOpen(from, ws)
		if !ok {
			return earliest
		}
		if t := start.Add(share(end.Sub(start))); !t.Before(earliest) {
			return t
		}
		from = end
	}
	// Only overlapping windows get here: the rest of the one open at
	// earliest still lies inside a window.
	_, end, _ := nextOpen(earliest, ws)
	return earliest.Add(share(end.Sub(earliest)))
}
