package daemon

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/assetd/assetd/apitype"
)

// TestIdleReleaserOncePerBusySpell: no release while the daemon idles
// from its start; one once quiet has passed after an event, then none
// while it stays idle; a spell of events defers it until quiet after the
// last one; a load in
// flight that sends nothing defers it until it ends; Close's end of the
// events or ctx ends the loop.
func TestIdleReleaserOncePerBusySpell(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const quiet = 5 * time.Second
		events := make(chan apitype.Event)
		var busy atomic.Bool
		var releases atomic.Int32
		r := &idleReleaser{quiet: quiet, events: events, busy: busy.Load, release: func() { releases.Add(1) }}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { r.run(ctx); close(done) }()
		want := func(n int32, when string) {
			t.Helper()
			synctest.Wait()
			if got := releases.Load(); got != n {
				t.Fatalf("%s: %d releases, want %d", when, got, n)
			}
		}
		time.Sleep(10 * time.Minute)
		want(0, "idle from the start")

		events <- apitype.Event{Type: apitype.EventCompleted}
		time.Sleep(quiet - time.Second)
		want(0, "before quiet after an event")
		time.Sleep(1500 * time.Millisecond)
		want(1, "quiet after an event")
		time.Sleep(10 * time.Minute)
		want(1, "idle for 10 minutes")

		for range 20 {
			events <- apitype.Event{Type: apitype.EventProgress}
			time.Sleep(time.Second)
		}
		want(1, "during a spell of events")
		time.Sleep(quiet)
		want(2, "quiet after the spell")

		busy.Store(true)
		events <- apitype.Event{Type: apitype.EventProgress}
		time.Sleep(time.Minute)
		want(2, "a quiet load in flight")
		busy.Store(false)
		time.Sleep(quiet + time.Second)
		want(3, "the load ended")

		cancel()
		<-done
		ended := make(chan struct{})
		go func() { r.run(t.Context()); close(ended) }()
		close(events)
		<-ended
	})
}

var heldPool sync.Pool

// TestReleaseMemoryFreesPools: buffers pooled in a sync.Pool (as the
// download chunks are) are freed and their pages returned to the OS by
// one release, though a single GC only moves them to the pool's victim
// cache. (Under the race detector Put drops some items: what counts is
// what the pool kept.) The heap is the process's: the test runs alone in
// a child process, so that no goroutine an earlier test left allocates
// meanwhile.
func TestReleaseMemoryFreesPools(t *testing.T) {
	if os.Getenv(releaseChild) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReleaseMemoryFreesPools$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), releaseChild+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestReleaseMemoryFreesPools") {
			t.Fatalf("the child process: %v\n%s", err, out)
		}
		return
	}
	runtime.GC()
	runtime.GC()
	// No GC while the pool fills: one would move its items to the victim
	// cache and the next free them before the release is asked to.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	base, _ := heapFigures()
	const n, size = 32, 512 << 10
	for range n {
		b := make([]byte, size)
		heldPool.Put(&b)
	}
	before, released0 := heapFigures()
	if before < base+n*size/2 {
		t.Fatalf("heap objects %d → %d bytes: the pool kept less than half of %d bytes", base, before, n*size)
	}
	releaseMemory()
	after, released := heapFigures()
	if after > base+2<<20 {
		t.Errorf("heap objects %d bytes, %d with the pool filled, %d after the release: the pooled bytes were not freed", base, before, after)
	}
	// What the release returned, not the free pages at one instant after
	// it (the runtime takes and frees pages meanwhile).
	if freed, got := int64(before)-int64(after), int64(released-released0); got < freed/2 {
		t.Errorf("%d bytes freed, %d returned to the OS", freed, got)
	}
	if heldPool.Get() != nil {
		t.Error("a buffer is still in the pool after the release")
	}
}

// releaseChild marks the child process of TestReleaseMemoryFreesPools.
const releaseChild = "ASSETD_TEST_RELEASE_CHILD"
