package fetch

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assetd/assetd/internal/caller"
	"github.com/assetd/assetd/internal/testkit"
)

// TestRequestRate: N requests at r/s with burst b take at least (N-b)/r.
// Only a lower bound is asserted.
func TestRequestRate(t *testing.T) {
	t.Parallel()
	o := testkit.NewOrigin(t)
	o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, _ *http.Request) {
		w.Write(manifestDoc("rohan"))
	})
	const n, r, b = 8, 20.0, 2
	cfg := testConfig(o.URL())
	cfg.RequestsPerSecond, cfg.Burst = r, b
	c := newClient(t, cfg)
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := c.Manifest(ctxT(t), "rohan", ""); err != nil {
			t.Fatal(err)
		}
	}
	if min := time.Duration(float64(n-b) / r * float64(time.Second)); time.Since(start) < min {
		t.Errorf("%d requests took %v, less than %v", n, time.Since(start), min)
	}
}

// TestRequestRateCoversRetries: retries wait for the limiter too.
func TestRequestRateCoversRetries(t *testing.T) {
	t.Parallel()
	o := testkit.NewOrigin(t)
	o.Handle("/", status(503, ""))
	cfg := testConfig(o.URL())
	cfg.RequestsPerSecond, cfg.Burst, cfg.MaxRetries = 20, 1, 4
	c := newClient(t, cfg)
	start := time.Now()
	c.Manifest(ctxT(t), "rohan", "")
	if o.TotalHits() != 5 {
		t.Fatalf("%d requests", o.TotalHits())
	}
	if min := 4 * time.Second / 20; time.Since(start) < min {
		t.Errorf("5 attempts took %v, less than %v", time.Since(start), min)
	}
}

// TestBandwidth: a body of 1.5 s of budget takes at least 0.5 s after the
// burst; reads larger than the burst are paid in chunks, and our own
// throttling does not trip the stall watchdog.
func TestBandwidth(t *testing.T) {
	t.Parallel()
	o := testkit.NewOrigin(t)
	const bps = 64 << 10
	data := randBytes(bps*3/2, 15)
	o.AddBlob(data)
	cfg := testConfig(o.URL())
	cfg.BytesPerSecond = bps
	cfg.StallWindow = 100 * time.Millisecond
	cfg.StallMinBytesPerSecond = 1 << 20
	c := newClient(t, cfg)
	start := time.Now()
	sink := newSink(t)
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: assetOf("a", data)}, sink, nil); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("%d bytes at %d B/s took %v", len(data), bps, d)
	}
	if o.TotalHits() != 1 {
		t.Errorf("%d requests", o.TotalHits())
	}
}

func TestBandwidthChunks(t *testing.T) {
	b := newBandwidth(1000)
	if waited, err := b.wait(context.Background(), 1000); err != nil || waited { // the burst
		t.Fatal(waited, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.wait(ctx, 5*copyBufferSize); err == nil {
		t.Error("a cancelled wait succeeded")
	}
	if newBandwidth(0) != nil {
		t.Error("0 is not unlimited")
	}
}

// TestGatePriority: at the cap, interactive waiters go before background
// ones, each in arrival order; a cancelled waiter leaves the queue.
func TestGatePriority(t *testing.T) {
	g := newGate(1)
	ctx := context.Background()
	if err := g.acquire(ctx, false); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	start := func(name string, bg bool, queued int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.acquire(ctx, bg); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			g.release(bg)
		}()
		waitQueued(t, g, queued)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan error)
	go func() { cancelled <- g.acquire(cctx, false) }()
	waitQueued(t, g, 1)
	cancel()
	if err := <-cancelled; err == nil {
		t.Fatal("a cancelled acquire succeeded")
	}
	start("bg1", true, 1)
	start("bg2", true, 2)
	start("fg1", false, 3)
	start("fg2", false, 4)
	g.release(false)
	wg.Wait()
	if got := strings.Join(order, " "); got != "fg1 fg2 bg1 bg2" {
		t.Errorf("order %s", got)
	}
	if g.running != [2]int{} || g.q.Len() != 0 {
		t.Errorf("gate left with running=%v queued=%d", g.running, g.q.Len())
	}
}

// waitQueued polls until n waiters are queued.
func waitQueued(t *testing.T, g *gate, n int) {
	t.Helper()
	for i := 0; i < 5000; i++ {
		g.mu.Lock()
		q := g.q.Len()
		g.mu.Unlock()
		if q == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d waiters never queued", n)
}

// TestGateFairAcrossCallers: at the cap, a caller's download waits at
// most one turn behind another caller's many queued ones.
func TestGateFairAcrossCallers(t *testing.T) {
	g := newGate(1)
	if err := g.acquire(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	flood := caller.NewContext(context.Background(), caller.ID{UID: 4242})
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	start := func(ctx context.Context, name string, queued int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.acquire(ctx, false); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
			g.release(false)
		}()
		waitQueued(t, g, queued)
	}
	for i := range 10 {
		start(flood, "flood", i+1)
	}
	start(caller.NewContext(context.Background(), caller.ID{UID: 0}), "root", 11)
	g.release(false)
	wg.Wait()
	if i := slices.Index(order, "root"); i > 1 {
		t.Errorf("root's download went %dth, behind %d of the flood's: %v", i+1, i, order)
	}
}

// TestHostLimiterCancelGivesBack: requests queued at a host's limiter and
// then cancelled (a DELETE /v1/loads after a flood) charge nothing: the
// limiter's budget is what it would be had they never come.
func TestHostLimiterCancelGivesBack(t *testing.T) {
	h := newHostLimiters(1, 1)
	ctx := context.Background()
	if err := h.wait(ctx, "o"); err != nil { // the burst
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	const n = 50
	errc := make(chan error, n)
	for range n {
		go func() { errc <- h.wait(cctx, "o") }()
	}
	waitHostQueued(t, h, "o", n)
	cancel()
	for range n {
		if err := <-errc; err == nil {
			t.Error("a cancelled wait succeeded")
		}
	}
	h.mu.Lock()
	tokens := h.m["o"].lim.Tokens()
	h.mu.Unlock()
	// Without the queued requests, the budget is between 0 and 1 token
	// (refilling at 1/s since the burst was taken); each request left
	// charged would take one more.
	if tokens < -1 {
		t.Errorf("the limiter holds %.1f tokens after %d cancelled requests: they stayed charged", tokens, n)
	}
}

// TestHostLimiterFairAcrossCallers: one caller's queued requests do not
// delay another's at a host's limiter by more than a turn.
func TestHostLimiterFairAcrossCallers(t *testing.T) {
	h := newHostLimiters(100, 1)
	if err := h.wait(context.Background(), "o"); err != nil {
		t.Fatal(err)
	}
	flood := caller.NewContext(context.Background(), caller.ID{UID: 4242})
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	run := func(ctx context.Context, name string) {
		defer wg.Done()
		if err := h.wait(ctx, "o"); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		order = append(order, name)
		mu.Unlock()
	}
	// Hold the queue (a reservation without a timer) so that all arrive
	// before any is served.
	h.mu.Lock()
	l := h.m["o"]
	l.pending = l.lim.Reserve()
	h.mu.Unlock()
	for i := range 20 {
		wg.Add(1)
		go run(flood, "flood")
		waitHostQueued(t, h, "o", i+1)
	}
	wg.Add(1)
	go run(caller.NewContext(context.Background(), caller.ID{UID: 0}), "root")
	waitHostQueued(t, h, "o", 21)
	h.mu.Lock()
	l.pending, l.timer = nil, nil
	h.scheduleLocked(l)
	h.mu.Unlock()
	wg.Wait()
	if i := slices.Index(order, "root"); i > 1 {
		t.Errorf("root's request went %dth, behind %d of the flood's", i+1, i)
	}
}

func waitHostQueued(t *testing.T, h *hostLimiters, host string, n int) {
	t.Helper()
	for range 5000 {
		h.mu.Lock()
		q := 0
		if l := h.m[host]; l != nil {
			q = l.q.Len()
		}
		h.mu.Unlock()
		if q == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%d requests never queued", n)
}

// TestConcurrencyCap: no more than Concurrency downloads of a class reach
// the origin at once, nor more than Concurrency background ones, and
// 2×Concurrency in all.
func TestConcurrencyCap(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(200_000, 16)
	var mu sync.Mutex
	var inFlight, most [2]int // interactive, background
	mostAll := 0
	for i, path := range []string{"/fg", "/bg"} {
		o.Handle(path, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			inFlight[i]++
			most[i] = max(most[i], inFlight[i])
			mostAll = max(mostAll, inFlight[0]+inFlight[1])
			mu.Unlock()
			defer func() {
				mu.Lock()
				inFlight[i]--
				mu.Unlock()
			}()
			time.Sleep(20 * time.Millisecond)
			o.ServeBlob(w, r, data)
		})
	}
	cfg := testConfig(o.URL())
	cfg.Concurrency = 2
	c := newClient(t, cfg)
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bg := i%2 == 0
			a := assetOf("a", data)
			a.URL = map[bool]string{false: "/fg", true: "/bg"}[bg]
			if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a, Background: bg}, newSink(t), nil); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if most[0] > 2 || most[1] > 2 || mostAll > 4 {
		t.Errorf("at most %d interactive, %d background, %d downloads at once; cap 2", most[0], most[1], mostAll)
	}
}

// TestTokenNeverLogged: with debug logging, failures, retries, redirects
// and an origin that echoes the token, neither the logs nor the errors
// carry it.
func TestTokenNeverLogged(t *testing.T) {
	o := testkit.NewOrigin(t)
	o.Handle("/v1/avatars/echo/manifest", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(401)
		w.Write([]byte(`{"code":"sessionTokenExpired","message":"token ` + r.Header.Get("Authorization") + ` expired"}`))
	})
	o.Handle("/v1/avatars/busy/manifest", status(503, `{"code":"x","message":"busy"}`))
	o.Handle("/v1/avatars/loop/manifest", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path, http.StatusFound)
	})
	o.Handle("/v1/avatars/cut/manifest", hangUp)
	var buf bytes.Buffer
	var mu sync.Mutex
	cfg := testConfig(o.URL())
	cfg.Logger = slog.New(slog.NewJSONHandler(lockedWriter{&mu, &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newClient(t, cfg)
	var msgs []string
	for _, id := range []string{"echo", "busy", "loop", "cut"} {
		_, err := c.Manifest(ctxT(t), id, "")
		if err == nil {
			t.Fatalf("%s succeeded", id)
		}
		msgs = append(msgs, err.Error())
	}
	a := assetOf("a", []byte("x"))
	a.URL = "/v1/avatars/busy/manifest"
	msgs = append(msgs, c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, newSink(t), nil).Error())
	mu.Lock()
	logs := buf.String()
	mu.Unlock()
	if !strings.Contains(logs, "retrying request") {
		t.Fatalf("the logs missed the retries:\n%s", logs)
	}
	if strings.Contains(logs, testToken) {
		t.Errorf("the token is in the logs:\n%s", logs)
	}
	for _, m := range msgs {
		if strings.Contains(m, testToken) {
			t.Errorf("the token is in an error: %s", m)
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestInteractiveFirst: at the cap, an interactive download queued after
// background ones reaches the origin before them.
func TestInteractiveFirst(t *testing.T) {
	o := testkit.NewOrigin(t)
	release := make(chan struct{})
	var mu sync.Mutex
	var arrivals []string
	data := map[string][]byte{}
	for _, name := range []string{"hold", "bg1", "bg2", "fg"} {
		data[name] = randBytes(1000, uint64(len(name))+uint64(name[0]))
		o.Handle("/"+name, func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			arrivals = append(arrivals, name)
			mu.Unlock()
			if name == "hold" {
				<-release
			}
			o.ServeBlob(w, r, data[name])
		})
	}
	cfg := testConfig(o.URL())
	cfg.Concurrency = 1
	c := newClient(t, cfg)
	var wg sync.WaitGroup
	download := func(name string, bg bool) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := assetOf(name, data[name])
			a.URL = "/" + name
			if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a, Background: bg}, newSink(t), nil); err != nil {
				t.Error(err)
			}
		}()
	}
	download("hold", false)
	for o.Hits("/hold") == 0 {
		time.Sleep(time.Millisecond)
	}
	download("bg1", true)
	waitQueued(t, c.gate, 1)
	download("bg2", true)
	waitQueued(t, c.gate, 2)
	download("fg", false)
	waitQueued(t, c.gate, 3)
	close(release)
	wg.Wait()
	if got := strings.Join(arrivals, " "); got != "hold fg bg1 bg2" {
		t.Errorf("arrivals %s", got)
	}
}

// TestBlobFirstAttemptsNotCharged: the request limiter bounds manifests and
// retries, not the first request of each blob download (those are bounded
// by the concurrency cap); at one request in 1000 s, five blobs still load.
func TestBlobFirstAttemptsNotCharged(t *testing.T) {
	t.Parallel()
	o := testkit.NewOrigin(t)
	var blobs [][]byte
	for i := range 5 {
		data := randBytes(1000+i, uint64(100+i))
		o.AddBlob(data)
		blobs = append(blobs, data)
	}
	o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, _ *http.Request) {
		w.Write(manifestDoc("rohan"))
	})
	cfg := testConfig(o.URL())
	cfg.RequestsPerSecond, cfg.Burst = 0.001, 1
	c := newClient(t, cfg)
	for i, data := range blobs {
		if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: assetOf("a", data)}, newSink(t), nil); err != nil {
			t.Fatalf("blob %d: %v", i, err)
		}
	}
	if _, err := c.Manifest(ctxT(t), "rohan", ""); err != nil {
		t.Fatalf("first manifest (the burst): %v", err)
	}
	ctx, cancel := context.WithTimeout(ctxT(t), 200*time.Millisecond)
	defer cancel()
	if _, err := c.Manifest(ctx, "rohan", ""); err == nil {
		t.Fatal("a second manifest request was not held by the limiter")
	}
}
