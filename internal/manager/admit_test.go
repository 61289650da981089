package manager

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/caller"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/store"
)

func asUID(uid uint32) context.Context {
	return caller.NewContext(context.Background(), caller.ID{UID: uid})
}

// waitFor polls cond (a condition, not a time) for up to 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func loadOf(m *Manager, id string) (apitype.Load, bool) {
	for _, l := range m.List().Loads {
		if l.AvatarID == id {
			return l, true
		}
	}
	return apitype.Load{}, false
}

// TestLoadCaps: distinct loads beyond a caller's cap or the total cap wait
// their turn (reported as queued), interactive before background; the
// daemon's own loads count only in the total; a queued load that is
// cancelled ends at once.
func TestLoadCaps(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{MaxLoads: 3, MaxLoadsPerUID: 2})
	hold := e.o.HoldBlobs(0)
	for _, id := range []string{"a0", "a1", "a2", "a3", "r0", "d0"} {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
	}
	for _, id := range []string{"a0", "a1", "a2", "a3"} {
		if _, _, err := e.m.Start(asUID(4242), id, LoadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "a0 and a1 to ask the origin", func() bool {
		return e.o.ManifestGets("a0") == 1 && e.o.ManifestGets("a1") == 1
	})
	for _, id := range []string{"a2", "a3"} {
		l, ok := loadOf(e.m, id)
		if !ok || l.Waiting != apitype.WaitingQueued {
			t.Errorf("%s beyond uid 4242's cap of 2: %+v, want queued", id, l)
		}
	}
	// Joining a queued load costs nothing and is queued too.
	if l, _, err := e.m.Start(asUID(4242), "a3", LoadOptions{}); err != nil || l.Waiting != apitype.WaitingQueued {
		t.Errorf("joining a3: %+v %v", l, err)
	}

	// Another caller is under its own cap: root's load runs at once.
	rec := &recorder{}
	rootDone := make(chan error, 1)
	go func() {
		_, err := e.m.Load(asUID(0), "r0", LoadOptions{Progress: rec.add})
		rootDone <- err
	}()
	waitFor(t, "root's load to ask the origin", func() bool { return e.o.ManifestGets("r0") == 1 })

	// The total (3) is reached: the daemon's preload waits, in the
	// background class.
	preloadDone := make(chan error, 1)
	go func() { preloadDone <- e.m.Preload(context.Background(), "d0") }()
	waitFor(t, "d0 to queue", func() bool { _, ok := loadOf(e.m, "d0"); return ok })
	if l, _ := loadOf(e.m, "d0"); l.Waiting != apitype.WaitingQueued {
		t.Errorf("d0 beyond the total cap: %+v", l)
	}

	// A slot frees: the interactive a2 goes before the background d0.
	if !e.m.CancelLoading("a0") {
		t.Fatal("a0 not cancelled")
	}
	waitFor(t, "a2 to start", func() bool { return e.o.ManifestGets("a2") == 1 })
	if n := e.o.ManifestGets("d0"); n != 0 {
		t.Errorf("the background d0 started before the interactive a2")
	}
	if n := e.o.ManifestGets("a3"); n != 0 {
		t.Errorf("a3 started beyond uid 4242's cap")
	}

	// Cancelling a queued load ends it without it ever asking the origin.
	if !e.m.CancelLoading("a3") {
		t.Fatal("a3 not cancelled")
	}
	waitFor(t, "a3 to end", func() bool { _, ok := loadOf(e.m, "a3"); return !ok })

	hold.Free()
	if err := <-rootDone; err != nil {
		t.Fatalf("root's load: %v", err)
	}
	if err := <-preloadDone; err != nil {
		t.Fatalf("the preload: %v", err)
	}
	if n := e.o.ManifestGets("a3"); n != 0 {
		t.Errorf("the cancelled a3 asked the origin %d times", n)
	}
	waitIdle(t, e.m)
}

// waitIdle waits until no load holds or waits for a slot.
func waitIdle(t *testing.T, m *Manager) {
	t.Helper()
	waitFor(t, "every load to give back its slot", func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.adm.running == 0 && m.adm.runningBG == 0 && m.adm.queue.Len() == 0 &&
			len(m.adm.byOwner) == 0 && len(m.adm.bgByOwner) == 0
	})
}

// TestInteractiveLoadBesideBackgroundLoads: a uid's background loads
// (a preload) hold every slot of its cap and of the total; its interactive
// load starts at once beside them, while its next background load waits.
func TestInteractiveLoadBesideBackgroundLoads(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{MaxLoads: 2, MaxLoadsPerUID: 2})
	hold := e.o.HoldBlobs(0)
	for _, id := range []string{"b0", "b1", "b2", "fg"} {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
	}
	for _, id := range []string{"b0", "b1", "b2"} {
		if _, _, err := e.m.Start(asUID(4242), id, LoadOptions{Background: true}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "b0 and b1 to ask the origin", func() bool {
		return e.o.ManifestGets("b0") == 1 && e.o.ManifestGets("b1") == 1
	})
	if l, _, err := e.m.Start(asUID(4242), "fg", LoadOptions{}); err != nil || l.Waiting == apitype.WaitingQueued {
		t.Fatalf("the interactive load waited behind background ones: %+v %v", l, err)
	}
	waitFor(t, "fg to ask the origin", func() bool { return e.o.ManifestGets("fg") == 1 })
	if l, _ := loadOf(e.m, "b2"); l.Waiting != apitype.WaitingQueued || e.o.ManifestGets("b2") != 0 {
		t.Errorf("b2 started beyond the caps: %+v", l)
	}
	hold.Free()
	for _, id := range []string{"b0", "b1", "b2", "fg"} {
		waitFor(t, id+" to end", func() bool { _, ok := loadOf(e.m, id); return !ok })
	}
	waitIdle(t, e.m)
}

// TestQueuedLoadEvents: a caller of a queued load is told it is queued,
// then that it moves.
func TestQueuedLoadEvents(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{MaxLoads: 1, MaxLoadsPerUID: 1})
	hold := e.o.HoldBlobs(0)
	e.o.Publish(avatarOf("first", "v1", files3("first")))
	e.o.Publish(avatarOf("second", "v1", files3("second")))
	if _, _, err := e.m.Start(asUID(1000), "first", LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	done := make(chan error, 1)
	go func() {
		_, err := e.m.Load(asUID(1000), "second", LoadOptions{Progress: rec.add})
		done <- err
	}()
	waitFor(t, "the queued event", func() bool { return len(rec.events()) > 0 })
	if ev := rec.events()[0]; ev.Type != apitype.EventProgress || ev.Waiting != apitype.WaitingQueued {
		t.Errorf("first event of a queued load: %+v", ev)
	}
	hold.Free()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs := rec.events()
	if len(evs) < 3 || evs[1].Waiting != "" || evs[len(evs)-1].Type != apitype.EventCompleted {
		t.Errorf("events %+v: want queued, then moving, then completed", evs)
	}
}

// TestTooManyLoadsRefused: only a caller's queue beyond MaxQueuedPerCaller
// is refused, with concurrentLimitExceeded (tooManyLoads); other callers
// and loads already in flight are not.
func TestTooManyLoadsRefused(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{MaxLoads: 1, MaxLoadsPerUID: 1})
	hold := e.o.HoldBlobs(0)
	e.o.Publish(avatarOf("running", "v1", files3("running")))
	if _, _, err := e.m.Start(asUID(4242), "running", LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := range MaxQueuedPerCaller {
		if _, _, err := e.m.Start(asUID(4242), fmt.Sprintf("q%d", i), LoadOptions{}); err != nil {
			t.Fatalf("queued load %d: %v", i, err)
		}
	}
	_, _, err := e.m.Start(asUID(4242), "one-more", LoadOptions{})
	var ee *errcode.Error
	if !errors.As(err, &ee) || ee.Code != errcode.ConcurrentLimitExceeded || ee.Reason != errcode.ReasonTooManyLoads || ee.AvatarID != "one-more" {
		t.Fatalf("load past the queue: %v", err)
	}
	if errs.HTTPStatus(err) != 429 || errs.ExitCode(err) != errs.ExitAvatar {
		t.Errorf("status %d exit %d", errs.HTTPStatus(err), errs.ExitCode(err))
	}
	if _, ok := loadOf(e.m, "one-more"); ok {
		t.Error("the refused load is listed")
	}
	// Joining a load in flight is free; another caller still queues.
	if _, _, err := e.m.Start(asUID(4242), "q7", LoadOptions{}); err != nil {
		t.Errorf("joining a queued load: %v", err)
	}
	if _, _, err := e.m.Start(asUID(0), "root", LoadOptions{}); err != nil {
		t.Errorf("root's load: %v", err)
	}
	if n := len(e.m.CancelAll()); n != MaxQueuedPerCaller+2 {
		t.Errorf("cancelled %d loads", n)
	}
	hold.Free()
	waitIdle(t, e.m)
}

// TestSetLoadLimitsStartsQueued: raising the caps (a reload) starts the
// loads waiting for them.
func TestSetLoadLimitsStartsQueued(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{MaxLoads: 1, MaxLoadsPerUID: 1})
	hold := e.o.HoldBlobs(0)
	defer hold.Free()
	for _, id := range []string{"x0", "x1", "x2"} {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
		if _, _, err := e.m.Start(asUID(1000), id, LoadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "x0 to start", func() bool { return e.o.ManifestGets("x0") == 1 })
	e.m.SetLoadLimits(8, 3)
	waitFor(t, "the queued loads to start", func() bool {
		return e.o.ManifestGets("x1") == 1 && e.o.ManifestGets("x2") == 1
	})
	e.m.CancelAll()
}

// TestPreloadOfManyCompletes: one caller's 200 loads at once (assetd
// preload of 200 IDs) all complete under the shipped caps: past its 32
// they wait their turn, they are not refused.
func TestPreloadOfManyCompletes(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	const n = 200
	for i := range n {
		id := fmt.Sprintf("p%03d", i)
		e.o.Publish(avatarOf(id, "v1", map[string][]byte{"a.bin": randomBytes(id, 1<<10)}))
	}
	errc := make(chan error, n)
	for i := range n {
		go func() {
			_, err := e.m.Load(asUID(1000), fmt.Sprintf("p%03d", i), LoadOptions{})
			errc <- err
		}()
	}
	for range n {
		if err := <-errc; err != nil {
			t.Error(err)
		}
	}
	waitIdle(t, e.m)
}

// TestJoinedPreloadMovesAhead: a preload whose downloads wait at the
// download cap behind other preloads' (all held at the origin) is joined
// by an interactive caller: its downloads start at once, interactive,
// without waiting for a slot the others hold.
func TestJoinedPreloadMovesAhead(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	hold := e.o.HoldBlobs(0)
	ids := []string{"b0", "b1", "b2", "b3", "p"}
	for _, id := range ids {
		e.o.Publish(avatarOf(id, "v1", files3(id)))
	}
	done := make(chan error, len(ids))
	for _, id := range ids[:4] {
		go func() { done <- e.m.Preload(context.Background(), id) }()
	}
	waitFor(t, "the 4 download slots to be held", func() bool { return e.o.Inflight() == 4 })
	go func() { done <- e.m.Preload(context.Background(), "p") }()
	waitFor(t, "p's downloads to queue", func() bool {
		l, ok := loadOf(e.m, "p")
		return ok && l.Waiting == apitype.WaitingQueued && e.o.ManifestGets("p") == 1
	})
	if _, _, err := e.m.Start(asUID(0), "p", LoadOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "p's downloads to start beside the held preloads", func() bool { return e.o.Inflight() > 4 })
	hold.Free()
	for range ids {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	waitIdle(t, e.m)
}
