package daemon

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/assetd/assetd/apitype"
)

// TestIdleReleaserOncePerBusySpell: the release comes once quiet has
// passed after the start, then never while the daemon stays idle; a
// spell of events defers it until quiet after the last one; a load in
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
		time.Sleep(quiet - time.Second)
		want(0, "before quiet after the start")
		time.Sleep(1500 * time.Millisecond)
		want(1, "quiet after the start")
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
// cache.
func TestReleaseMemoryFreesPools(t *testing.T) {
	runtime.GC()
	runtime.GC()
	const n, size = 16, 512 << 10
	for range n {
		b := make([]byte, size)
		heldPool.Put(&b)
	}
	before, _ := heapFigures()
	releaseMemory()
	after, _ := heapFigures()
	if before-after < n*size*7/8 {
		t.Errorf("heap objects %d → %d bytes: the pooled %d bytes were not freed", before, after, n*size)
	}
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(s)
	if free := s[0].Value.Uint64(); free > 1<<20 {
		t.Errorf("%d bytes of the heap free and not returned to the OS", free)
	}
}
