package main

import (
	"fmt"
	"time"

	"github.com/assetd/assetd/apitype"
)

// speedWindow is how far back a speed looks: long enough to smooth the
// bursts of a read-ahead, short enough that a stall shows within seconds.
const speedWindow = 5 * time.Second

// minSpan is the least time a speed is measured over.
const minSpan = time.Second

type reading struct {
	at time.Time
	n  int64
}

// speedometer is a moving average of a byte counter over speedWindow.
// The counter is cumulative, so the bytes in a window are the newest
// value less the value at the window's start.
type speedometer struct {
	samples []reading // oldest first; the first at or before now-speedWindow
	paused  time.Time // when a pause began; zero when running
}

// pause stops the clock while the download is queued: the time it waits
// for a slot is no part of its speed.
func (s *speedometer) pause(at time.Time) {
	if s.paused.IsZero() {
		s.paused = at
	}
}

// resume moves the readings past a pause forward by its length.
func (s *speedometer) resume(at time.Time) {
	if s.paused.IsZero() {
		return
	}
	d := at.Sub(s.paused)
	s.paused = time.Time{}
	for i := range s.samples {
		s.samples[i].at = s.samples[i].at.Add(d)
	}
}

func (s *speedometer) add(at time.Time, n int64) {
	if k := len(s.samples); k > 0 && s.samples[k-1].n == n {
		return // nothing new: the window's end is now anyway
	}
	s.samples = append(s.samples, reading{at, n})
	// Keep one sample at or before the window's start.
	cut := 0
	for cut+1 < len(s.samples) && !s.samples[cut+1].at.After(at.Add(-speedWindow)) {
		cut++
	}
	s.samples = s.samples[cut:]
}

// rate is the bytes a second over the last speedWindow up to now; false
// until minSpan has been seen.
func (s *speedometer) rate(now time.Time) (float64, bool) {
	if len(s.samples) == 0 {
		return 0, false
	}
	first, last := s.samples[0], s.samples[len(s.samples)-1]
	from := now.Add(-speedWindow)
	base := first.n
	if from.Before(first.at) {
		from = first.at
	} else {
		for _, x := range s.samples {
			if x.at.After(from) {
				break
			}
			base = x.n
		}
	}
	span := now.Sub(from)
	if span < minSpan {
		return 0, false
	}
	return float64(last.n-base) / span.Seconds(), true
}

// tracker follows one avatar's load for a view.
type tracker struct {
	last      apitype.Event
	speed     speedometer
	fromCache bool
}

func (t *tracker) update(ev apitype.Event, now time.Time) {
	switch ev.Type {
	case apitype.EventProgress:
		t.last = ev
		switch ev.Waiting {
		case "":
			t.speed.resume(now)
			t.speed.add(now, ev.BytesReceived)
		case apitype.WaitingRetrying:
			// A speed measured across failures says nothing of the next bytes.
			t.speed = speedometer{}
		default:
			t.speed.pause(now)
		}
	case apitype.EventCompleted:
		t.fromCache = ev.FromCache
	}
}

// waiting says what the load waits for: "queued", "retrying (2/6):
// connection refused", or "".
func waiting(ev apitype.Event) string {
	switch ev.Waiting {
	case "":
		return ""
	case apitype.WaitingRetrying:
		s := "retrying"
		if ev.Attempt > 0 && ev.MaxAttempts > 0 {
			s += fmt.Sprintf(" (%d/%d)", ev.Attempt, ev.MaxAttempts)
		}
		if ev.LastError != "" {
			s += ": " + ev.LastError
		}
		return s
	}
	return ev.Waiting
}

// rateText is "2.0 MiB/s, ETA 4s", or "" while no speed is known.
func (t *tracker) rateText(now time.Time, sep string) string {
	r, ok := t.speed.rate(now)
	if !ok {
		return ""
	}
	s := humanBytes(int64(r)) + "/s"
	if left := t.last.BytesTotal - t.last.BytesDone; r >= 1 && left > 0 {
		if eta := time.Duration(float64(left) / r * float64(time.Second)).Round(time.Second); eta > 0 {
			s += sep + "ETA " + eta.String()
		}
	}
	return s
}
