package apitest_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
	"github.com/assetd/assetd/internal/errs"
)

func avatar(id string, used time.Time, pinned bool) apitype.Avatar {
	return apitype.Avatar{AvatarID: id, Version: "1", State: apitype.StateReady, SizeBytes: 10, LastUsed: used, Pinned: pinned}
}

// TestClearLRUAsTheStore: pinned avatars stay and count toward keep, the
// rest go oldest first, and the IDs removed come sorted (store.KeepLRU).
func TestClearLRUAsTheStore(t *testing.T) {
	now := time.Now()
	var m apitest.Manager
	m.Put(avatar("pinned", now.Add(-9*time.Hour), true), avatar("new", now, false),
		avatar("mid", now.Add(-time.Hour), false), avatar("old", now.Add(-2*time.Hour), false))
	removed, err := m.ClearLRU(2)
	if err != nil || !slices.Equal(removed, []string{"mid", "old"}) {
		t.Errorf("ClearLRU(2) = %q, %v; want mid, old", removed, err)
	}
	if got := m.Cached(); !slices.Equal(got, []string{"new", "pinned"}) {
		t.Errorf("cached %q", got)
	}
	if calls := m.Calls(); !slices.Equal(calls, []string{"ClearLRU 2"}) {
		t.Errorf("calls %q", calls)
	}
}

// TestScriptedLoad: a script's events go out in order, each handed to
// Delivered; the completed avatar is cached; a load of an avatar neither
// scripted nor cached fails notCached with its own failed event.
func TestScriptedLoad(t *testing.T) {
	var m apitest.Manager
	a := avatar("rohan", time.Time{}, false)
	m.Script("rohan", apitype.Event{Type: apitype.EventProgress, AvatarID: "rohan", BytesDone: 5, BytesTotal: 10}, apitest.Completed(&a))
	var sent, delivered []apitype.Event
	m.Delivered = func(_ context.Context, ev apitype.Event) { delivered = append(delivered, ev) }
	o := api.LoadOptions{Progress: func(ev apitype.Event) { sent = append(sent, ev) }}
	got, err := m.Load(t.Context(), "rohan", o)
	if err != nil || got.AvatarID != "rohan" || len(sent) != 2 || !slices.EqualFunc(sent, delivered, func(a, b apitype.Event) bool { return a.Type == b.Type }) {
		t.Fatalf("Load = %+v, %v; sent %+v, delivered %+v", got, err, sent, delivered)
	}
	if _, err := m.Retrieve("rohan"); err != nil {
		t.Errorf("not cached after its load: %v", err)
	}

	sent = nil
	_, err = m.Load(t.Context(), "ghost", o)
	if e := (*errcode.Error)(nil); !errors.As(err, &e) || e.Reason != errcode.ReasonNotCached || len(sent) != 1 || sent[0].Type != apitype.EventFailed {
		t.Errorf("unscripted load: %v, events %+v", err, sent)
	}
}

// TestHangingLoad: a hanging load stays in flight when its caller leaves,
// and CancelLoading ends it with a cancelled failure.
func TestHangingLoad(t *testing.T) {
	var m apitest.Manager
	m.Script("slow", apitype.Event{Type: apitype.EventProgress, AvatarID: "slow"})
	m.Hang("slow")
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := m.Load(ctx, "slow", api.LoadOptions{})
		done <- err
	}()
	<-m.Started()
	cancel()
	<-done
	if ls := m.Loads(); len(ls) != 1 || ls[0].AvatarID != "slow" {
		t.Fatalf("loads after the caller left: %+v", ls)
	}

	go func() {
		_, err := m.Load(t.Context(), "slow", api.LoadOptions{})
		done <- err
	}()
	<-m.Started()
	if !m.CancelLoading("slow") {
		t.Error("CancelLoading found no load")
	}
	if err := <-done; errs.CodeOf(err) != errcode.Cancelled {
		t.Errorf("cancelled load: %v", err)
	}
	if m.CancelLoading("slow") || len(m.Loads()) != 0 {
		t.Errorf("a load still in flight: %+v", m.Loads())
	}
}

// TestSubscribe: SetEvents' events, then the end; without them the
// subscription stays open until cancelled.
func TestSubscribe(t *testing.T) {
	var m apitest.Manager
	ch, cancel := m.Subscribe()
	select {
	case ev := <-ch:
		t.Fatalf("event %+v from a silent subscription", ev)
	default:
	}
	cancel()
	m.SetEvents(apitype.Event{Type: apitype.EventState, AvatarID: "a"})
	ch, cancel = m.Subscribe()
	defer cancel()
	var got []apitype.Event
	for ev := range ch {
		got = append(got, ev)
	}
	if len(got) != 1 || got[0].AvatarID != "a" {
		t.Errorf("events %+v", got)
	}
}
