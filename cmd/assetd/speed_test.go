package main

import (
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
)

func prog(done, total, received int64, waiting string) apitype.Event {
	return apitype.Event{Type: apitype.EventProgress, State: apitype.StateDownloading,
		BytesDone: done, BytesTotal: total, BytesReceived: received, Waiting: waiting}
}

// TestSpeedIsOfBytesReceived: a speed is the bytes received over the last
// seconds, not since the start; a resumed partial is no part of it; the
// time queued for a slot is not either; a stall shows within the window.
func TestSpeedIsOfBytesReceived(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var tr tracker
	tr.update(prog(5*mib, 20*mib, 0, ""), at(0)) // a 5 MiB partial resumed
	if _, ok := tr.speed.rate(at(0.5)); ok {
		t.Error("a speed before a second of bytes")
	}
	tr.update(prog(6*mib, 20*mib, 1*mib, ""), at(1))
	tr.update(prog(7*mib, 20*mib, 2*mib, ""), at(2))
	if r, _ := tr.speed.rate(at(2)); r != mib {
		t.Errorf("speed %v B/s, want 1 MiB/s: the resumed bytes are not received", r)
	}
	if got, want := tr.rateText(at(2), ", "), "1.0 MiB/s, ETA 13s"; got != want {
		t.Errorf("rateText %q, want %q", got, want)
	}

	// Queued for 60 s: the wait is no part of the speed once bytes flow.
	tr.update(prog(7*mib, 20*mib, 2*mib, apitype.WaitingQueued), at(2))
	tr.update(prog(7*mib, 20*mib, 2*mib, ""), at(62)) // the slot is ours
	tr.update(prog(8*mib, 20*mib, 3*mib, ""), at(63))
	if r, _ := tr.speed.rate(at(63)); r != mib {
		t.Errorf("after a queue: %v B/s, want 1 MiB/s", r)
	}

	// Much faster lately: the window forgets the start.
	for s := 64; s <= 70; s++ {
		tr.update(prog(8*mib+int64(s-63)*4*mib, 200*mib, 3*mib+int64(s-63)*4*mib, ""), at(float64(s)))
	}
	if r, _ := tr.speed.rate(at(70)); r != 4*mib {
		t.Errorf("recent speed %v B/s, want 4 MiB/s", r)
	}
	// A stall: no bytes for 5 s reads 0.
	if r, _ := tr.speed.rate(at(75)); r != 0 {
		t.Errorf("after a 5 s stall: %v B/s, want 0", r)
	}

	// Retrying drops the speed; it starts again with the next bytes.
	tr.update(prog(40*mib, 200*mib, 35*mib, apitype.WaitingRetrying), at(76))
	if _, ok := tr.speed.rate(at(76)); ok {
		t.Error("a speed across a retry")
	}
}

func TestWaitingText(t *testing.T) {
	for _, tt := range []struct {
		ev   apitype.Event
		want string
	}{
		{prog(0, 0, 0, ""), ""},
		{prog(0, 0, 0, apitype.WaitingQueued), "queued"},
		{apitype.Event{Waiting: apitype.WaitingRetrying, Attempt: 2, MaxAttempts: 5, LastError: "connection refused"}, "retrying (2/5): connection refused"},
		{apitype.Event{Waiting: apitype.WaitingRetrying}, "retrying"},
	} {
		if got := waiting(tt.ev); got != tt.want {
			t.Errorf("waiting(%+v) = %q, want %q", tt.ev, got, tt.want)
		}
	}
}
