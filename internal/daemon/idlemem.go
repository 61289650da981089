package daemon

import (
	"context"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/assetd/assetd/apitype"
)

// idleRelease is how long the daemon goes without a load's event (and
// with no load in flight) before it gives the memory its work left back
// to the OS.
const idleRelease = 5 * time.Second

// idleReleaser returns the memory that loads leave behind once the daemon
// goes quiet. Go's runtime keeps
// freed heap pages until its scavenger's pace returns them, and it runs a
// GC only when the heap grows by GOGC or every two minutes: an idle daemon
// allocates nothing, so neither comes, and the download buffers' pools
// (internal/fetch: up to 4 × 512 KiB chunks and 256 KiB reads a large
// download) stay resident with the garbage of the last load, ~6-9 MiB
// after a cold preload. One release after each busy spell costs two GCs
// of the live heap (a few ms of CPU), never one while idle. The start is
// no busy spell: a large cache's Open leaves garbage too, but two GCs
// cost CPU in proportion to the live heap (~150 MiB with 100,000 avatars
// indexed), and a command that follows the start (a gc, a listing) would
// pay for them.
type idleReleaser struct {
	quiet   time.Duration
	events  <-chan apitype.Event // any load's events: the daemon is busy
	busy    func() bool          // a load is in flight (it may be quiet: a slow origin)
	release func()
}

// run releases once quiet has passed with no event and no load in
// flight after an event: the timer is armed only by one, so an idle
// daemon releases once after its last busy spell. It returns when ctx ends or
// events closes, and stops its timer.
func (r *idleReleaser) run(ctx context.Context) {
	t := time.NewTimer(r.quiet)
	t.Stop() // armed by the first event
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-r.events:
			if !ok {
				return
			}
			t.Reset(r.quiet)
		case <-t.C:
			if r.busy() {
				t.Reset(r.quiet)
			} else {
				r.release()
			}
		}
	}
}

// releaseMemory collects the garbage and returns every free page to the
// OS. The first GC moves sync.Pool's items to its victim cache, the
// second (FreeOSMemory's) frees them.
func releaseMemory() {
	runtime.GC()
	debug.FreeOSMemory()
}

// heapFigures reads the heap's live objects and the bytes returned to the
// OS, for the release's log line.
func heapFigures() (objects, released uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() == metrics.KindUint64 {
		objects = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		released = s[1].Value.Uint64()
	}
	return objects, released
}

// releaseWhenIdle runs the daemon's idleReleaser on the manager's events
// until ctx ends.
func (d *daemon) releaseWhenIdle(ctx context.Context) {
	events, cancel := d.mgr.Subscribe()
	defer cancel()
	r := &idleReleaser{quiet: idleRelease, events: events,
		busy: func() bool { return len(d.mgr.Loads()) > 0 },
		release: func() {
			start := time.Now()
			releaseMemory()
			objects, released := heapFigures()
			d.log.Debug("idle: returned free memory to the OS", "took", time.Since(start),
				"heap_objects_bytes", objects, "heap_released_bytes", released)
		}}
	r.run(ctx)
}
