package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// TestPreloadProgressSaysWhatItWaitsFor: `assetd preload` (plain lines,
// as in a log) says `retrying (2/6): HTTP 503 ...` while the origin fails,
// `queued` while the one download slot is taken, prints no `downloading`
// line before a manifest is in, ends with a total line for several
// avatars, and says `already cached` for an avatar that needed nothing.
func TestPreloadProgressSaysWhatItWaitsFor(t *testing.T) {
	e := testkit.NewEnv(t, waitLimit)
	maya := testkit.RandomAvatar(t, "maya", 256<<10)
	rohan := testkit.RandomAvatar(t, "rohan", 128<<10)
	o := testkit.UnstartedOrigin(maya, rohan)
	var mu sync.Mutex
	fails := 2
	o.Start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/avatars/rohan/manifest" {
			mu.Lock()
			fail := fails > 0
			fails--
			mu.Unlock()
			if fail {
				testkit.Fail(w, http.StatusServiceUnavailable, "serverError")
				return
			}
		}
		o.ServeHTTP(w, r)
	}))
	hold := o.HoldBlob(maya.Assets[0].SHA256, 64<<10)
	e.WriteConfig(testkit.Config{OriginURL: o.URL(), MaxRetries: 5, Fetch: "concurrency = 1"})
	p := e.Start()
	defer p.Stop()

	// Free maya's download once rohan waits for its slot.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	queued := make(chan struct{})
	subscribed := make(chan struct{})
	go followEvents(ctx, e, subscribed, func(ev apitype.Event) bool {
		if ev.AvatarID == "rohan" && ev.Waiting == apitype.WaitingQueued {
			close(queued)
			return false
		}
		return true
	})
	<-subscribed
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := e.CLI("preload", "maya", "rohan")
		done <- result{out, errOut, code}
	}()
	select {
	case <-queued:
	case r := <-done:
		t.Fatalf("preload ended before rohan was queued: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	hold.Free()
	r := <-done
	if r.code != 0 {
		t.Fatalf("preload: exit %d\n%s%s", r.code, r.out, r.errOut)
	}
	t.Logf("preload maya rohan:\n%s", r.out)
	for _, want := range []string{
		"rohan: retrying (2/6): HTTP 503 Service Unavailable",
		"rohan: retrying (3/6): HTTP 503 Service Unavailable",
		"rohan: queued",
		"maya: completed, version 1, 256.0 KiB",
		"rohan: completed, version 1, 128.0 KiB",
	} {
		if !hasLine(r.out, want) {
			t.Errorf("no line %q", want)
		}
	}
	if !regexp.MustCompile(`(?m)^total: 2 of 2 avatars completed; 384\.0 KiB downloaded in [0-9.]+m?s$`).MatchString(r.out) {
		t.Errorf("no total line")
	}
	bare := regexp.MustCompile(`(?m)^\w+: downloading$`)
	if m := bare.FindString(r.out); m != "" {
		t.Errorf("a downloading line before the manifest is in: %q", m)
	}

	out, errOut, code := e.CLI("preload", "maya", "rohan")
	if code != 0 {
		t.Fatalf("second preload: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("again:\n%s", out)
	for _, want := range []string{
		"maya: already cached, version 1, 256.0 KiB",
		"rohan: already cached, version 1, 128.0 KiB",
		"total: 2 of 2 avatars completed (2 already cached); 0 B downloaded in 0s",
	} {
		if !hasLine(out, want) {
			t.Errorf("no line %q", want)
		}
	}
	if strings.Contains(out, "downloading") {
		t.Errorf("a cached avatar printed a downloading line")
	}

	out, errOut, code = e.CLI("preload", "nobody")
	if code == 0 || strings.Contains(out, "downloading") {
		t.Errorf("unknown ID: exit %d, stdout %q (want no downloading line), stderr %q", code, out, errOut)
	}
}

func hasLine(out, line string) bool {
	for l := range strings.Lines(out) {
		if strings.TrimRight(l, "\n") == line {
			return true
		}
	}
	return false
}

// followEvents follows /v1/events until ctx ends or keep says false;
// subscribed is closed once the stream is open (or failed).
func followEvents(ctx context.Context, e *testkit.Env, subscribed chan struct{}, keep func(apitype.Event) bool) {
	c := e.Client()
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://assetd/v1/events", nil)
	if err != nil {
		close(subscribed)
		return
	}
	resp, err := c.Do(req)
	close(subscribed)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var ev apitype.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil && !keep(ev) {
			return
		}
	}
}
