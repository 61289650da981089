package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/errs"
)

// progressView shows the loads of several avatars at once. event and done
// are called from one goroutine per avatar; done once per avatar, with the
// load's result; finish once, after every done.
type progressView interface {
	event(ev apitype.Event)
	done(id string, av *apitype.Avatar, err error)
	finish()
}

// avatarError is err as an *errs.Error that names the avatar.
func avatarError(id string, err error) *errs.Error { return errs.From(err).WithAvatar(id) }

// fraction is how far a load is, 0 to 1.
func fraction(ev apitype.Event) float64 {
	f := ev.Progress
	if ev.BytesTotal > 0 {
		f = float64(ev.BytesDone) / float64(ev.BytesTotal)
	}
	return min(max(f, 0), 1)
}

func completedLine(av *apitype.Avatar) string {
	return fmt.Sprintf("%s: completed, version %s, %s", av.AvatarID, av.Version, humanBytes(av.SizeBytes))
}

// plainView prints a line per event for logs and pipes: the first event
// of each avatar and then one a tenth of the way, so that a log stays
// readable however many events the daemon sends.
type plainView struct {
	out, errOut io.Writer

	mu    sync.Mutex
	shown map[string]int // the last tenth printed, per avatar
}

func newPlainView(out, errOut io.Writer) *plainView {
	return &plainView{out: out, errOut: errOut, shown: map[string]int{}}
}

func (v *plainView) event(ev apitype.Event) {
	if ev.Type != apitype.EventProgress && ev.Type != apitype.EventState {
		return // done prints the end
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if ev.Type == apitype.EventState {
		line := fmt.Sprintf("%s: %s", ev.AvatarID, ev.State)
		if ev.Error != nil {
			line += " (" + describe(ev.Error.Err().WithAvatar(ev.AvatarID)) + ")"
		}
		fmt.Fprintln(v.out, line)
		return
	}
	f := fraction(ev)
	tenth := int(f * 10)
	if last, ok := v.shown[ev.AvatarID]; ok && tenth <= last {
		return
	}
	v.shown[ev.AvatarID] = tenth
	if ev.BytesTotal <= 0 && ev.BytesDone <= 0 {
		fmt.Fprintf(v.out, "%s: %s\n", ev.AvatarID, ev.State) // the manifest is not in yet
		return
	}
	fmt.Fprintf(v.out, "%s: %s %d%% (%s of %s)\n", ev.AvatarID, ev.State, int(f*100),
		humanBytes(ev.BytesDone), humanBytes(ev.BytesTotal))
}

func (v *plainView) done(id string, av *apitype.Avatar, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	delete(v.shown, id)
	switch {
	case interrupted(err):
		fmt.Fprintf(v.errOut, "%s: interrupted\n", id)
	case err != nil:
		fmt.Fprintln(v.errOut, describe(avatarError(id, err)))
	default:
		fmt.Fprintln(v.out, completedLine(av))
	}
}

func (v *plainView) finish() {}

// jsonView prints every event as one line of JSON (NDJSON), and makes
// sure each avatar ends with a completed or failed line even when its
// stream broke before the daemon could send one.
type jsonView struct {
	mu    sync.Mutex
	enc   *json.Encoder
	ended map[string]bool
}

func newJSONView(out io.Writer) *jsonView {
	return &jsonView{enc: json.NewEncoder(out), ended: map[string]bool{}}
}

func (v *jsonView) event(ev apitype.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if ev.Type == apitype.EventCompleted || ev.Type == apitype.EventFailed {
		v.ended[ev.AvatarID] = true
	}
	v.enc.Encode(ev)
}

func (v *jsonView) done(id string, av *apitype.Avatar, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.ended[id] || err == nil {
		return
	}
	body := avatarError(id, err).Body()
	v.enc.Encode(apitype.Event{Type: apitype.EventFailed, AvatarID: id, State: apitype.StateFailed, Error: &body})
}

func (v *jsonView) finish() {}

// barView draws a progress bar per avatar on a terminal, with bytes, rate
// and time left; a bar ends with ✓ completed or ✗ and the error code. The
// whole errors follow under the bars once every load has ended.
type barView struct {
	p      *mpb.Progress
	bars   map[string]*avatarBar // fixed once built
	errOut io.Writer

	mu     sync.Mutex
	failed []string
}

type avatarBar struct {
	bar   *mpb.Bar
	final atomic.Pointer[string] // what the bar ends with

	mu         sync.Mutex // the rate's base, set by the first event
	start      time.Time
	startBytes int64
}

func newBarView(out, errOut io.Writer, ids []string, opts ...mpb.ContainerOption) *barView {
	opts = append([]mpb.ContainerOption{mpb.WithOutput(out), mpb.WithWidth(100), mpb.WithRefreshRate(120 * time.Millisecond)}, opts...)
	v := &barView{
		p:      mpb.New(opts...),
		bars:   make(map[string]*avatarBar, len(ids)),
		errOut: errOut,
	}
	width := 0
	for _, id := range ids {
		width = max(width, len(id))
	}
	for _, id := range ids {
		ab := &avatarBar{}
		ab.bar = v.p.AddBar(0,
			mpb.PrependDecorators(decor.Name(id, decor.WC{W: width + 1, C: decor.DindentRight})),
			mpb.AppendDecorators(decor.Any(ab.status, decor.WC{W: 1, C: decor.DextraSpace})),
			mpb.BarWidth(30),
		)
		v.bars[id] = ab
	}
	return v
}

// status is the text after the bar: bytes, rate and time left while it
// runs, its end once it has ended.
func (ab *avatarBar) status(s decor.Statistics) string {
	if f := ab.final.Load(); f != nil {
		return *f
	}
	ab.mu.Lock()
	start, base := ab.start, ab.startBytes
	ab.mu.Unlock()
	if start.IsZero() || s.Total <= 0 {
		return "waiting"
	}
	pct := 100 * float64(s.Current) / float64(s.Total)
	line := fmt.Sprintf("%3.0f%%  %s / %s", pct, humanBytes(s.Current), humanBytes(s.Total))
	elapsed := time.Since(start).Seconds()
	if got := s.Current - base; elapsed > 0.5 && got > 0 {
		rate := float64(got) / elapsed
		left := time.Duration(float64(s.Total-s.Current) / rate * float64(time.Second))
		line += fmt.Sprintf("  %s/s  ETA %s", humanBytes(int64(rate)), left.Round(time.Second))
	}
	return line
}

func (v *barView) event(ev apitype.Event) {
	ab := v.bars[ev.AvatarID]
	if ab == nil || ev.Type != apitype.EventProgress {
		return
	}
	ab.mu.Lock()
	if ab.start.IsZero() {
		ab.start, ab.startBytes = time.Now(), ev.BytesDone
	}
	ab.mu.Unlock()
	if ev.BytesTotal > 0 {
		ab.bar.SetTotal(ev.BytesTotal, false)
	}
	ab.bar.SetCurrent(ev.BytesDone)
}

func (v *barView) done(id string, av *apitype.Avatar, err error) {
	ab := v.bars[id]
	if err != nil {
		e := avatarError(id, err)
		msg := "✗ " + string(e.Code)
		if interrupted(err) {
			msg = "✗ interrupted"
		}
		ab.final.Store(&msg)
		ab.bar.Abort(false)
		if interrupted(err) {
			return
		}
		v.mu.Lock()
		v.failed = append(v.failed, describe(e))
		v.mu.Unlock()
		return
	}
	msg := fmt.Sprintf("✓ completed  %s  version %s", humanBytes(av.SizeBytes), av.Version)
	ab.final.Store(&msg)
	ab.bar.SetTotal(av.SizeBytes, true)
}

func (v *barView) finish() {
	v.p.Wait()
	for _, line := range v.failed {
		fmt.Fprintln(v.errOut, line)
	}
}
