package api_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/client"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
	"github.com/assetd/assetd/internal/errs"
)

func progress(id string, done, total int64) apitype.Event {
	return apitype.Event{Type: apitype.EventProgress, AvatarID: id, State: apitype.StateDownloading,
		Progress: float64(done) / float64(total), BytesDone: done, BytesTotal: total}
}

func TestLoadStream(t *testing.T) {
	var opts api.LoadOptions
	fm := &apitest.Manager{LoadFn: func(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
		opts = o
		o.Progress(progress(id, 0, 8123456))
		o.Progress(progress(id, 8123456, 8123456))
		return sampleAvatar(id), nil
	}}
	ts := start(t, fm, api.Options{})
	var evs []apitype.Event
	av, err := ts.c.Load(testCtx(t), "rohan", client.LoadOptions{Pin: true, Background: true}, func(ev apitype.Event) { evs = append(evs, ev) })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sampleAvatar("rohan"), av); diff != "" {
		t.Errorf("avatar (-want +got):\n%s", diff)
	}
	if !opts.Pin || !opts.Background {
		t.Errorf("options %+v", opts)
	}
	// Progress events may collapse under a slow reader; the last one ends it.
	if n := len(evs); n < 2 || evs[n-1].Type != apitype.EventCompleted || evs[n-1].Progress != 1 || evs[n-1].Avatar == nil {
		t.Fatalf("events %+v", evs)
	}
	for _, ev := range evs[:len(evs)-1] {
		if ev.Type != apitype.EventProgress || ev.AvatarID != "rohan" {
			t.Errorf("event %+v", ev)
		}
	}

	// The raw stream is NDJSON, one event a line.
	status, hdr, body := ts.raw(t, "POST", "/v1/avatars/rohan/load", nil, nil)
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if status != 200 || hdr.Get("Content-Type") != "application/x-ndjson" || len(lines) < 2 ||
		!strings.HasPrefix(lines[len(lines)-1], `{"type":"completed","avatarId":"rohan","state":"completed","progress":1,`) {
		t.Errorf("%d %s:\n%s", status, hdr.Get("Content-Type"), body)
	}
}

func TestLoadFailed(t *testing.T) {
	fail := &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Phase: errcode.PhaseVerify, Reason: errcode.ReasonHashMismatch,
		Transient: true, HTTPStatus: 503, Asset: "model.splat", Message: "bad bytes", Err: errors.New("secret cause")}
	fm := &apitest.Manager{LoadFn: func(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
		o.Progress(progress(id, 1, 2))
		return nil, fail
	}}
	ts := start(t, fm, api.Options{})
	var last apitype.Event
	_, err := ts.c.Load(testCtx(t), "rohan", client.LoadOptions{}, func(ev apitype.Event) { last = ev })
	e := wantCode(t, err, errcode.FailedToDownloadAvatarAssets)
	want := &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Phase: errcode.PhaseVerify, Reason: errcode.ReasonHashMismatch,
		Transient: true, HTTPStatus: 503, Asset: "model.splat", Message: "bad bytes", AvatarID: "rohan",
		Hint: "run: assetd preload rohan; if it recurs, the origin serves bytes that differ from its manifest: republish the avatar (assetd publish)"}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
	if last.Type != apitype.EventFailed || last.Error == nil || last.Error.Recovery != "Check network connectivity and retry." {
		t.Errorf("last event %+v", last)
	}
}

// TestLoadTerminalFromManager: when the manager sends the completed or
// failed event itself, the stream carries it once and ends.
func TestLoadTerminalFromManager(t *testing.T) {
	fm := &apitest.Manager{LoadFn: func(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
		err := errcode.Error{Code: errcode.Cancelled, Message: "cancelled by a caller"}
		body := err.Body()
		o.Progress(apitype.Event{Type: apitype.EventFailed, AvatarID: id, State: apitype.StateFailed, Error: &body})
		o.Progress(progress(id, 1, 2)) // late: dropped
		return nil, &err
	}}
	ts := start(t, fm, api.Options{})
	_, _, body := ts.raw(t, "POST", "/v1/avatars/rohan/load", nil, nil)
	if n := strings.Count(string(body), "\n"); n != 1 || !strings.Contains(string(body), `"code":"cancelled"`) {
		t.Errorf("stream:\n%s", body)
	}
	_, err := ts.c.Load(testCtx(t), "rohan", client.LoadOptions{}, nil)
	wantCode(t, err, errcode.Cancelled)
}

func TestLoadNoWait(t *testing.T) {
	fm := &apitest.Manager{StartFn: func(id string, o api.LoadOptions) (apitype.Load, *apitype.Avatar, error) {
		if id == "cached" {
			return apitype.Load{}, sampleAvatar(id), nil
		}
		return apitype.Load{AvatarID: id, State: apitype.StateDownloading, Progress: 0.25, BytesDone: 1, BytesTotal: 4, Background: o.Background}, nil, nil
	}}
	ts := start(t, fm, api.Options{})
	ctx := testCtx(t)
	load, cached, err := ts.c.Start(ctx, "rohan", client.LoadOptions{Background: true})
	if err != nil || cached != nil || load != (apitype.Load{AvatarID: "rohan", State: apitype.StateDownloading, Progress: 0.25, BytesDone: 1, BytesTotal: 4, Background: true}) {
		t.Errorf("Start = %+v, %v, %v", load, cached, err)
	}
	_, cached, err = ts.c.Start(ctx, "cached", client.LoadOptions{})
	if err != nil || cached == nil || cached.AvatarID != "cached" {
		t.Errorf("Start cached = %+v, %v", cached, err)
	}
	for path, want := range map[string]int{"/v1/avatars/rohan/load?wait=false": 202, "/v1/avatars/cached/load?wait=false": 200} {
		if status, _, _ := ts.raw(t, "POST", path, nil, nil); status != want {
			t.Errorf("POST %s: %d, want %d", path, status, want)
		}
	}
	fm.StartFn = nil
	_, _, err = ts.c.Start(ctx, "x", client.LoadOptions{})
	wantCode(t, err, errcode.AvatarAssetMissing)
}

// TestLoadCallerGoesAway: a caller that hangs up ends its wait (the
// manager's Load sees its context end) and the client says Cancelled.
func TestLoadCallerGoesAway(t *testing.T) {
	started := make(chan struct{})
	ended := make(chan error, 1)
	fm := &apitest.Manager{LoadFn: func(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
		o.Progress(progress(id, 0, 10))
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}}
	ts := start(t, fm, api.Options{})
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() { <-started; cancel() }()
	_, err := ts.c.Load(ctx, "rohan", client.LoadOptions{}, nil)
	wantCode(t, err, errcode.Cancelled)
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("manager's ctx ended with %v", err)
	}
}

// TestLoadEndsOnShutdown: a stream in progress ends when the server stops.
func TestLoadEndsOnShutdown(t *testing.T) {
	started := make(chan struct{})
	fm := &apitest.Manager{LoadFn: func(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
		close(started)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	ts := start(t, fm, api.Options{})
	go func() { <-started; ts.stop() }()
	_, err := ts.c.Load(testCtx(t), "rohan", client.LoadOptions{}, nil)
	wantCode(t, err, errcode.Cancelled)
}

// TestConcurrentLoads: 64 callers of one avatar share one broadcast and
// all receive the same completed event.
func TestConcurrentLoads(t *testing.T) {
	const n = 64
	var mu sync.Mutex
	var joined []func(apitype.Event)
	all := make(chan struct{})
	fm := &apitest.Manager{LoadFn: func(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
		mu.Lock()
		joined = append(joined, o.Progress)
		if len(joined) == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return sampleAvatar(id), nil
	}}
	ts := start(t, fm, api.Options{})
	// The broadcaster: once everyone joined, one event to all.
	go func() {
		<-all
		mu.Lock()
		defer mu.Unlock()
		for _, p := range joined {
			p(progress("rohan", 4, 8))
		}
	}()
	ctx := testCtx(t)
	var wg sync.WaitGroup
	lasts := make([]apitype.Event, n)
	errsC := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, err := ts.c.Load(ctx, "rohan", client.LoadOptions{}, func(ev apitype.Event) { lasts[i] = ev })
			errsC <- err
		})
	}
	wg.Wait()
	close(errsC)
	for err := range errsC {
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range lasts {
		if diff := cmp.Diff(lasts[0], lasts[i]); diff != "" || lasts[i].Type != apitype.EventCompleted {
			t.Errorf("caller %d: %s %s", i, lasts[i].Type, diff)
		}
	}
}

func TestEvents(t *testing.T) {
	ch := make(chan apitype.Event, 3)
	cancelled := make(chan struct{})
	fm := &apitest.Manager{SubscribeFn: func() (<-chan apitype.Event, func()) {
		return ch, func() { close(cancelled) }
	}}
	ts := start(t, fm, api.Options{})
	ch <- progress("a", 1, 2)
	ch <- apitype.Event{Type: apitype.EventState, AvatarID: "b", State: apitype.StateStale}
	ch <- apitype.Event{Type: apitype.EventCompleted, AvatarID: "a", State: apitype.StateCompleted, Progress: 1, Avatar: sampleAvatar("a")}
	ctx, cancel := context.WithCancel(testCtx(t))
	var got []apitype.Event
	err := ts.c.Events(ctx, func(ev apitype.Event) {
		got = append(got, ev)
		if len(got) == 3 {
			cancel()
		}
	})
	wantCode(t, err, errcode.Cancelled)
	if len(got) != 3 || got[1].State != apitype.StateStale || got[2].Avatar == nil {
		t.Errorf("events %+v", got)
	}
	<-cancelled // the server let go of its subscription

	// A closed subscription ends the stream: Events returns nil.
	ch2 := make(chan apitype.Event, 1)
	ch2 <- progress("c", 1, 2)
	close(ch2)
	fm.SubscribeFn = func() (<-chan apitype.Event, func()) { return ch2, func() {} }
	got = nil
	if err := ts.c.Events(testCtx(t), func(ev apitype.Event) { got = append(got, ev) }); err != nil || len(got) != 1 {
		t.Errorf("Events = %v, %+v", err, got)
	}
	status, hdr, _ := ts.raw(t, "GET", "/v1/events", nil, nil)
	if status != http.StatusOK || hdr.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("GET /v1/events: %d %s", status, hdr.Get("Content-Type"))
	}
}

// TestEventsEndOnShutdown: Serve returns while a watcher is connected.
func TestEventsEndOnShutdown(t *testing.T) {
	subscribed := make(chan struct{})
	fm := &apitest.Manager{SubscribeFn: func() (<-chan apitype.Event, func()) {
		close(subscribed)
		return make(chan apitype.Event), func() {}
	}}
	ts := start(t, fm, api.Options{})
	go func() { <-subscribed; ts.stop() }()
	err := ts.c.Events(testCtx(t), func(apitype.Event) {})
	if err != nil && errs.CodeOf(err) != errcode.Internal {
		t.Errorf("Events = %v", err)
	}
}

// TestLoadSlowReader: a caller that does not read never blocks the
// manager's Progress; its pending progress collapses to the latest, and
// the stream still ends with the completed event.
func TestLoadSlowReader(t *testing.T) {
	const events = 100000
	returned := make(chan struct{})
	fm := &apitest.Manager{LoadFn: func(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
		for i := range events {
			o.Progress(progress(id, int64(i+1), events))
		}
		close(returned)
		return sampleAvatar(id), nil
	}}
	ts := start(t, fm, api.Options{})
	conn, err := net.Dial("unix", ts.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "POST /v1/avatars/rohan/load HTTP/1.1\r\nHost: assetd\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned: // before the caller read a byte
	case <-testCtx(t).Done():
		t.Fatal("Progress blocked on a caller that does not read")
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	if len(lines) >= events || !strings.HasPrefix(lines[len(lines)-1], `{"type":"completed"`) {
		t.Errorf("%d lines, last %s", len(lines), lines[len(lines)-1])
	}
}

// TestErrorHint: the error body keeps the SDK's recovery text and adds a
// hint chosen by the reason and filled with the daemon's facts, in plain
// answers, in a load's failed event and on /v1/events.
func TestErrorHint(t *testing.T) {
	noOrigin := &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Phase: errcode.PhaseMetadata,
		Reason: errcode.ReasonNoOrigin, Message: "no origin is configured"}
	fm := &apitest.Manager{
		LoadFn: func(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
			return nil, noOrigin.WithAvatar(id)
		},
		RetrieveFn: func(id string) (*apitype.Avatar, error) {
			return nil, &errcode.Error{Code: errcode.AvatarAssetMissing, Phase: errcode.PhaseLocal, Reason: errcode.ReasonNotCached, AvatarID: id}
		},
	}
	facts := func() errs.Facts { return errs.Facts{ConfigPath: "/etc/assetd/assetd.toml"} }
	ts := start(t, fm, api.Options{Facts: facts})
	var last apitype.Event
	_, err := ts.c.Load(testCtx(t), "rohan", client.LoadOptions{}, func(ev apitype.Event) { last = ev })
	e := wantCode(t, err, errcode.FailedToFetchAvatarMetadata)
	const want = "set origin.url in /etc/assetd/assetd.toml"
	if e.Hint != want || last.Error == nil || last.Error.Hint != want {
		t.Errorf("hint = %q, event %+v", e.Hint, last.Error)
	}
	if last.Error.Recovery != "Check network connectivity and retry." {
		t.Errorf("recovery changed: %q", last.Error.Recovery)
	}
	_, err = ts.c.Get(testCtx(t), "nobody")
	if e := wantCode(t, err, errcode.AvatarAssetMissing); e.Hint != "run: assetd preload nobody" {
		t.Errorf("get hint = %q", e.Hint)
	}

	shared := noOrigin.WithAvatar("aria").Body()
	events := make(chan apitype.Event, 1)
	events <- apitype.Event{Type: apitype.EventState, AvatarID: "aria", State: apitype.StateFailed, Error: &shared}
	fm.SubscribeFn = func() (<-chan apitype.Event, func()) { return events, func() {} }
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	var got *apitype.Error
	ts.c.Events(ctx, func(ev apitype.Event) { got = ev.Error; cancel() })
	if got == nil || got.Hint != want {
		t.Errorf("event error %+v", got)
	}
	if shared.Hint != "" {
		t.Error("the manager's shared event body was changed")
	}
}
