package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
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

// avatarError is err as an *errcode.Error that names the avatar.
func avatarError(id string, err error) *errcode.Error { return errs.From(err).WithAvatar(id) }

// fraction is how far a load is, 0 to 1.
func fraction(ev apitype.Event) float64 {
	f := ev.Progress
	if ev.BytesTotal > 0 {
		f = float64(ev.BytesDone) / float64(ev.BytesTotal)
	}
	return min(max(f, 0), 1)
}

func completedLine(av *apitype.Avatar, fromCache bool) string {
	what := "completed"
	if fromCache {
		what = "already cached"
	}
	line := fmt.Sprintf("%s: %s, version %s, %s", av.AvatarID, what, av.Version, humanBytes(av.SizeBytes))
	if av.State == apitype.StateStale {
		line += " (stale: the origin could not be reached)"
	}
	return line
}

// totals sums up the loads of several avatars for the last line.
type totals struct {
	avatars, completed, cached, failed int
	received                           int64
	start                              time.Time
}

func (t *totals) add(tr *tracker, err error) {
	t.avatars++
	switch {
	case err != nil:
		t.failed++
	case tr.fromCache:
		t.cached++
		fallthrough
	default:
		t.completed++
	}
	t.received += tr.last.BytesReceived
}

// line is "total: 3 of 4 avatars completed (1 already cached), 1 failed;
// 21.3 MiB downloaded in 12s".
func (t *totals) line(now time.Time) string {
	s := fmt.Sprintf("total: %d of %d avatars completed", t.completed, t.avatars)
	if t.cached > 0 {
		s += fmt.Sprintf(" (%d already cached)", t.cached)
	}
	if t.failed > 0 {
		s += fmt.Sprintf(", %d failed", t.failed)
	}
	return s + fmt.Sprintf("; %s downloaded in %s", humanBytes(t.received), now.Sub(t.start).Round(100*time.Millisecond))
}

// plainView prints a line per event for logs and pipes: what each load
// waits for when that changes, then a line a tenth of the way, so that a
// log stays readable however many events the daemon sends. Nothing is
// printed for a load until its manifest is in or it waits: an avatar
// already cached prints only its end.
type plainView struct {
	out, errOut io.Writer
	now         func() time.Time
	several     bool // print a total line

	mu     sync.Mutex
	shown  map[string]int    // the last tenth printed, per avatar
	said   map[string]string // the last waiting text printed, per avatar
	tracks map[string]*tracker
	sum    totals
}

func newPlainView(out, errOut io.Writer) *plainView {
	return &plainView{out: out, errOut: errOut, now: time.Now, shown: map[string]int{}, said: map[string]string{},
		tracks: map[string]*tracker{}, sum: totals{start: time.Now()}}
}

func (v *plainView) track(id string) *tracker {
	t := v.tracks[id]
	if t == nil {
		t = &tracker{}
		v.tracks[id] = t
	}
	return t
}

func (v *plainView) event(ev apitype.Event) {
	v.mu.Lock()
	defer v.mu.Unlock()
	tr := v.track(ev.AvatarID)
	tr.update(ev, v.now())
	switch ev.Type {
	case apitype.EventState:
		line := fmt.Sprintf("%s: %s", ev.AvatarID, ev.State)
		if ev.Error != nil {
			line += " (" + describe(ev.Error.Err().WithAvatar(ev.AvatarID)) + ")"
		}
		fmt.Fprintln(v.out, line)
		return
	case apitype.EventProgress:
	default:
		return // done prints the end
	}
	// Once bytes flow, a download of the load waiting for the slot
	// another's takes is not news: only retries are.
	moving := ev.BytesReceived > 0
	if w := waiting(ev); w != v.said[ev.AvatarID] && !(moving && ev.Waiting == apitype.WaitingQueued) {
		v.said[ev.AvatarID] = w
		if w != "" {
			fmt.Fprintf(v.out, "%s: %s\n", ev.AvatarID, w)
			return
		}
	}
	if ev.Waiting != "" || ev.BytesTotal <= 0 {
		return // the manifest is not in yet
	}
	f := fraction(ev)
	tenth := int(f * 10)
	if last, ok := v.shown[ev.AvatarID]; ok && tenth <= last {
		return
	}
	v.shown[ev.AvatarID] = tenth
	line := fmt.Sprintf("%s: %s %d%% (%s of %s", ev.AvatarID, ev.State, int(f*100),
		humanBytes(ev.BytesDone), humanBytes(ev.BytesTotal))
	if r := tr.rateText(v.now(), ", "); r != "" {
		line += ", " + r
	}
	fmt.Fprintln(v.out, line+")")
}

func (v *plainView) done(id string, av *apitype.Avatar, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	tr := v.track(id)
	delete(v.shown, id)
	delete(v.said, id)
	delete(v.tracks, id)
	v.sum.add(tr, err)
	switch {
	case interrupted(err):
		fmt.Fprintf(v.errOut, "%s: interrupted\n", id)
	case err != nil:
		fmt.Fprintln(v.errOut, describe(avatarError(id, err)))
	default:
		fmt.Fprintln(v.out, completedLine(av, tr.fromCache))
	}
}

func (v *plainView) finish() {
	if v.several {
		fmt.Fprintln(v.out, v.sum.line(v.now()))
	}
}

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

// barView draws a progress bar per avatar on a terminal, with bytes,
// speed (over the last seconds) and time left, or what the load waits
// for; a bar ends with ✓ completed, ✓ already cached, or ✗ and the error
// code. With several avatars a total bar follows. The whole errors follow
// under the bars once every load has ended.
type barView struct {
	p      *mpb.Progress
	bars   map[string]*avatarBar // fixed once built
	total  *avatarBar            // nil for one avatar
	errOut io.Writer
	now    func() time.Time

	mu     sync.Mutex
	failed []string
	sum    totals
}

type avatarBar struct {
	bar   *mpb.Bar
	final atomic.Pointer[string] // what the bar ends with
	now   func() time.Time

	mu sync.Mutex
	tr tracker
}

func newBarView(out, errOut io.Writer, ids []string, opts ...mpb.ContainerOption) *barView {
	opts = append([]mpb.ContainerOption{mpb.WithOutput(out), mpb.WithWidth(100), mpb.WithRefreshRate(120 * time.Millisecond)}, opts...)
	v := &barView{
		p:      mpb.New(opts...),
		bars:   make(map[string]*avatarBar, len(ids)),
		errOut: errOut,
		now:    time.Now,
		sum:    totals{start: time.Now()},
	}
	width := len("total")
	for _, id := range ids {
		width = max(width, len(id))
	}
	add := func(name string) *avatarBar {
		ab := &avatarBar{now: func() time.Time { return v.now() }}
		ab.bar = v.p.AddBar(0,
			mpb.PrependDecorators(decor.Name(name, decor.WC{W: width + 1, C: decor.DindentRight})),
			mpb.AppendDecorators(decor.Any(ab.status, decor.WC{W: 1, C: decor.DextraSpace})),
			mpb.BarWidth(30),
		)
		return ab
	}
	for _, id := range ids {
		v.bars[id] = add(id)
	}
	if len(ids) > 1 {
		v.total = add("total")
	}
	return v
}

// status is the text after the bar: bytes, speed and time left while it
// runs, or what it waits for; its end once it has ended.
func (ab *avatarBar) status(s decor.Statistics) string {
	if f := ab.final.Load(); f != nil {
		return *f
	}
	ab.mu.Lock()
	defer ab.mu.Unlock()
	if w := waiting(ab.tr.last); w != "" {
		return w
	}
	if s.Total <= 0 {
		return "starting"
	}
	pct := 100 * float64(s.Current) / float64(s.Total)
	line := fmt.Sprintf("%3.0f%%  %s / %s", pct, humanBytes(s.Current), humanBytes(s.Total))
	if r := ab.tr.rateText(ab.now(), "  "); r != "" {
		line += "  " + r
	}
	return line
}

func (v *barView) event(ev apitype.Event) {
	ab := v.bars[ev.AvatarID]
	if ab == nil {
		return
	}
	ab.mu.Lock()
	ab.tr.update(ev, v.now())
	ab.mu.Unlock()
	if ev.Type != apitype.EventProgress {
		return
	}
	if ev.BytesTotal > 0 {
		ab.bar.SetTotal(ev.BytesTotal, false)
	}
	ab.bar.SetCurrent(ev.BytesDone)
	v.updateTotal()
}

// updateTotal sums the avatars' bars into the total bar.
func (v *barView) updateTotal() {
	if v.total == nil {
		return
	}
	var sum apitype.Event
	for _, ab := range v.bars {
		ab.mu.Lock()
		sum.BytesDone += ab.tr.last.BytesDone
		sum.BytesTotal += ab.tr.last.BytesTotal
		sum.BytesReceived += ab.tr.last.BytesReceived
		ab.mu.Unlock()
	}
	sum.Type = apitype.EventProgress
	v.total.mu.Lock()
	if sum.BytesReceived > 0 { // the speed starts with the first byte
		v.total.tr.update(sum, v.now())
	} else {
		v.total.tr.last = sum
	}
	v.total.mu.Unlock()
	if sum.BytesTotal > 0 {
		v.total.bar.SetTotal(sum.BytesTotal, false)
	}
	v.total.bar.SetCurrent(sum.BytesDone)
}

func (v *barView) done(id string, av *apitype.Avatar, err error) {
	ab := v.bars[id]
	ab.mu.Lock()
	fromCache := ab.tr.fromCache
	v.mu.Lock()
	v.sum.add(&ab.tr, err)
	v.mu.Unlock()
	ab.mu.Unlock()
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
	what := "completed"
	if fromCache {
		what = "already cached"
	}
	msg := fmt.Sprintf("✓ %s  %s  version %s", what, humanBytes(av.SizeBytes), av.Version)
	if av.State == apitype.StateStale {
		msg += "  (stale)"
	}
	ab.final.Store(&msg)
	ab.bar.SetTotal(av.SizeBytes, true)
}

func (v *barView) finish() {
	if v.total != nil {
		v.mu.Lock()
		msg := v.sum.line(v.now())
		v.mu.Unlock()
		msg = strings.TrimPrefix(msg, "total: ")
		v.total.final.Store(&msg)
		if v.sum.failed > 0 {
			v.total.bar.Abort(false)
		} else {
			n := max(v.total.bar.Current(), 1) // all cached: nothing moved, full anyway
			v.total.bar.SetCurrent(n)
			v.total.bar.SetTotal(n, true)
		}
	}
	v.p.Wait()
	for _, line := range v.failed {
		fmt.Fprintln(v.errOut, line)
	}
}
