package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var background = func() bool { return true }

// TestBandwidthBackgroundShare: on a fake clock, while interactive readers
// want every byte, background readers still get at least a tenth of the
// bandwidth (and little more); once the interactive readers stop, the
// background ones get all of it; an interactive reader that wants less
// than the link leaves the rest to background ones.
func TestBandwidthBackgroundShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 1 << 20
		b := newBandwidth(rate)
		bgctx, stopBG := context.WithCancel(WithBackground(context.Background(), background))
		fgctx, stopFG := context.WithCancel(context.Background())
		var fg, bg atomic.Int64
		var wg sync.WaitGroup
		reader := func(ctx context.Context, n int, pause time.Duration, count *atomic.Int64) {
			wg.Go(func() {
				for {
					if _, err := b.wait(ctx, n); err != nil {
						return
					}
					count.Add(int64(n))
					if pause > 0 {
						time.Sleep(pause)
					}
				}
			})
		}
		for range 3 {
			reader(bgctx, copyBufferSize, 0, &bg)
		}
		for range 2 {
			reader(fgctx, 64<<10, 0, &fg)
		}
		const span = 60 * time.Second
		time.Sleep(span)
		f, g := fg.Load(), bg.Load()
		total := f + g
		if want := int64(span.Seconds() * rate); total < want*95/100 || total > want+2*copyBufferSize {
			t.Errorf("%d bytes granted in %v at %d B/s", total, span, rate)
		}
		if share := float64(g) / float64(total); share < 0.10 || share > 0.15 {
			t.Errorf("background got %.1f%% of the bandwidth beside continuous interactive readers, want 10-15%%", 100*share)
		}

		stopFG()
		synctest.Wait()
		g0 := bg.Load()
		time.Sleep(10 * time.Second)
		if got := bg.Load() - g0; got < 10*rate*95/100 {
			t.Errorf("background alone got %d bytes in 10 s at %d B/s", got, rate)
		}

		// An interactive reader of 64 KiB every 250 ms (256 KiB/s) takes what
		// it wants; the background readers get the rest.
		fgctx, stopFG = context.WithCancel(context.Background())
		f0, g0 := fg.Load(), bg.Load()
		reader(fgctx, 64<<10, 250*time.Millisecond, &fg)
		time.Sleep(20 * time.Second)
		f, g = fg.Load()-f0, bg.Load()-g0
		if want := int64(20 * 256 << 10); f < want*95/100 {
			t.Errorf("a 256 KiB/s interactive reader got %d bytes in 20 s, want %d", f, want)
		}
		if f+g < 20*rate*90/100 {
			t.Errorf("%d + %d bytes in 20 s at %d B/s: background did not take what interactive left", f, g, rate)
		}
		stopFG()
		stopBG()
		wg.Wait()
	})
}

// TestBandwidthCancelledWaiterLeaves: a cancelled background waiter
// leaves the queue and the others are still served.
func TestBandwidthCancelledWaiterLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newBandwidth(1000)
		ctx := context.Background()
		if _, err := b.wait(ctx, 1000); err != nil { // the burst
			t.Fatal(err)
		}
		cctx, cancel := context.WithCancel(WithBackground(ctx, background))
		errc := make(chan error)
		go func() { _, err := b.wait(cctx, 1000); errc <- err }()
		synctest.Wait()
		cancel()
		if err := <-errc; err == nil {
			t.Fatal("a cancelled wait succeeded")
		}
		start := time.Now()
		if _, err := b.wait(ctx, 1000); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > time.Second+time.Millisecond {
			t.Errorf("the next reader waited %v for 1000 bytes at 1000 B/s", d)
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.q.Len() != 0 {
			t.Errorf("%d waiters left", b.q.Len())
		}
	})
}

// TestGateInteractiveBesideBackground: with every slot held by background
// downloads, an interactive one starts at once; a background one waits
// until fewer than the cap run in all.
func TestGateInteractiveBesideBackground(t *testing.T) {
	g := newGate(2)
	ctx := context.Background()
	for range 2 {
		if err := g.acquire(ctx, true); err != nil {
			t.Fatal(err)
		}
	}
	soon, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := g.acquire(soon, false); err != nil {
		t.Fatalf("an interactive download waited for a slot background ones hold: %v", err)
	}
	got := make(chan struct{})
	go func() {
		if err := g.acquire(ctx, true); err == nil {
			close(got)
		}
	}()
	waitQueued(t, g, 1)
	g.release(true) // 1 background + 1 interactive run: the cap
	g.mu.Lock()
	queued := g.q.Len()
	g.mu.Unlock()
	if queued != 1 {
		t.Fatal("a background download started with the cap reached")
	}
	g.release(false)
	<-got
	g.release(true)
	g.release(true)
	if g.running != [2]int{} || g.q.Len() != 0 {
		t.Errorf("gate left with running=%v queued=%d", g.running, g.q.Len())
	}
}

// TestHostLimiterInteractiveFirst: an interactive request queued after
// background ones at a host's limiter goes first.
func TestHostLimiterInteractiveFirst(t *testing.T) {
	h := newHostLimiters(100, 1)
	if err := h.wait(context.Background(), "o"); err != nil {
		t.Fatal(err)
	}
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
	h.mu.Lock()
	l := h.m["o"]
	l.pending = l.lim.Reserve() // hold the queue until all have arrived
	h.mu.Unlock()
	for i := range 5 {
		wg.Add(1)
		go run(WithBackground(context.Background(), background), "bg")
		waitHostQueued(t, h, "o", i+1)
	}
	wg.Add(1)
	go run(context.Background(), "fg")
	waitHostQueued(t, h, "o", 6)
	h.mu.Lock()
	l.pending, l.timer = nil, nil
	h.scheduleLocked(l)
	h.mu.Unlock()
	wg.Wait()
	if order[0] != "fg" {
		t.Errorf("order %v: the interactive request waited behind background ones", order)
	}
}

// memOrigin serves blobs from memory through Config.Transport, with Range,
// and counts the bytes its bodies hand out: on a fake clock, the bandwidth
// limiter is the only thing that takes time.
type memOrigin struct {
	blobs map[string][]byte
	sent  atomic.Int64
	mu    sync.Mutex
	reqs  []string
}

func (o *memOrigin) RoundTrip(r *http.Request) (*http.Response, error) {
	data, ok := o.blobs[r.URL.Path]
	o.mu.Lock()
	o.reqs = append(o.reqs, r.URL.Path+" "+r.Header.Get("Range"))
	o.mu.Unlock()
	if !ok {
		return &http.Response{StatusCode: 404, Body: http.NoBody, Request: r, Header: http.Header{}}, nil
	}
	h, status, from := http.Header{}, http.StatusOK, 0
	if v, ok := strings.CutPrefix(r.Header.Get("Range"), "bytes="); ok {
		n, err := strconv.Atoi(strings.TrimSuffix(v, "-"))
		if err != nil || n >= len(data) {
			return nil, fmt.Errorf("bad range %q", v)
		}
		status, from = http.StatusPartialContent, n
		h.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", n, len(data)-1, len(data)))
	}
	body := &countingReader{r: bytes.NewReader(data[from:]), n: &o.sent}
	return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(body),
		ContentLength: int64(len(data) - from), Request: r}, nil
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// memSink is a Sink in memory.
type memSink struct {
	n int64
	h hash.Hash
}

func newMemSink() *memSink                     { return &memSink{h: sha256.New()} }
func (s *memSink) Write(p []byte) (int, error) { s.n += int64(len(p)); return s.h.Write(p) }
func (s *memSink) Size() int64                 { return s.n }
func (s *memSink) Digest() string              { return hex.EncodeToString(s.h.Sum(nil)) }
func (s *memSink) Truncate() error             { s.n = 0; s.h.Reset(); return nil }

// TestInteractiveOvertakesBackground: on a fake clock at 1 MiB/s with
// fetch.concurrency = 2, both slots busy with 3 MiB background downloads,
// an interactive 4 MiB download starts at once and finishes within 1.25×
// its time alone; the background downloads keep moving meanwhile (their
// share of the link) and complete; the origin sent every byte once.
func TestInteractiveOvertakesBackground(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 1 << 20
		o := &memOrigin{blobs: map[string][]byte{
			"/bg0": randBytes(3<<20, 1), "/bg1": randBytes(3<<20, 2), "/fg": randBytes(4<<20, 3),
		}}
		cfg := testConfig("http://127.0.0.1:9")
		cfg.Transport = o
		cfg.BytesPerSecond = rate
		cfg.Concurrency = 2
		cfg.Logger = slog.New(slog.DiscardHandler)
		c, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		download := func(path string, bg bool, progress func(int64)) error {
			a := assetOf(path, o.blobs[path])
			a.URL = path
			return c.Download(context.Background(), Blob{AvatarID: "rohan", Asset: a, Background: bg}, newMemSink(), progress)
		}
		var bgBytes atomic.Int64
		var wg sync.WaitGroup
		for _, p := range []string{"/bg0", "/bg1"} {
			wg.Go(func() {
				if err := download(p, true, func(d int64) { bgBytes.Add(d) }); err != nil {
					t.Errorf("%s: %v", p, err)
				}
			})
		}
		time.Sleep(time.Second)
		start, bgBefore := time.Now(), bgBytes.Load()
		if err := download("/fg", false, nil); err != nil {
			t.Fatal(err)
		}
		took, bgDuring := time.Since(start), bgBytes.Load()-bgBefore
		alone := time.Duration(float64(len(o.blobs["/fg"])) / rate * float64(time.Second))
		if took > alone*5/4 {
			t.Errorf("the interactive download took %v beside background ones, %v alone", took, alone)
		}
		if bgDuring == 0 {
			t.Error("the background downloads were starved during the interactive one")
		}
		wg.Wait()
		var want int64
		for _, b := range o.blobs {
			want += int64(len(b))
		}
		if got := o.sent.Load(); got != want {
			t.Errorf("the origin sent %d bytes for %d bytes of blobs; requests %v", got, want, o.reqs)
		}
		if n := len(o.reqs); n != 3 {
			t.Errorf("%d requests, want 3: %v", n, o.reqs)
		}
	})
}

// TestBandwidthReaderHiccup: an interactive reader that wants the whole
// link but is descheduled for 30 ms every tenth read (a busy CPU) keeps
// it: background readers get their credit, not the bucket that filled
// meanwhile (at 20 MiB/s, the burst refills in 12.5 ms).
func TestBandwidthReaderHiccup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 20 << 20
		b := newBandwidth(rate)
		ctx, cancel := context.WithCancel(context.Background())
		bgctx := WithBackground(ctx, background)
		var fg, bg atomic.Int64
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				for {
					if _, err := b.wait(bgctx, copyBufferSize); err != nil {
						return
					}
					bg.Add(copyBufferSize)
				}
			})
		}
		wg.Go(func() {
			for i := 0; ; i++ {
				if _, err := b.wait(ctx, copyBufferSize); err != nil {
					return
				}
				fg.Add(copyBufferSize)
				if i%10 == 9 {
					time.Sleep(30 * time.Millisecond)
				}
			}
		})
		time.Sleep(20 * time.Second)
		cancel()
		wg.Wait()
		f, g := fg.Load(), bg.Load()
		if share := float64(g) / float64(f+g); share > 0.15 {
			t.Errorf("background got %.1f%% of the link beside an interactive reader with 30 ms hiccups, want its credit (11%%)", 100*share)
		}
	})
}

// TestPromoteQueuedDownload: a background download queued at the cap
// whose load becomes interactive (a caller joined a preload) goes before
// the background downloads queued ahead of it, and holds an interactive
// slot.
func TestPromoteQueuedDownload(t *testing.T) {
	c := newClient(t, testConfig("http://127.0.0.1:9"))
	g := newGate(1)
	c.gate = g
	ctx := context.Background()
	if err := g.acquire(ctx, false); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	start := func(name string, ctx context.Context, queued int) {
		wg.Go(func() {
			bg, err := g.acquireClass(ctx, true)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, fmt.Sprintf("%s:%v", name, bg))
			mu.Unlock()
			g.release(bg)
		})
		waitQueued(t, g, queued)
	}
	var joined atomic.Bool
	joined.Store(true)
	start("preload1", WithBackground(ctx, background), 1)
	start("preload2", WithBackground(ctx, joined.Load), 2)
	joined.Store(false) // an interactive caller joined preload2's load
	c.Promote()
	g.mu.Lock()
	if n := g.q.LenClass(false); n != 1 {
		t.Errorf("%d interactive waiters after Promote, want 1", n)
	}
	g.mu.Unlock()
	g.release(false)
	wg.Wait()
	if got := strings.Join(order, " "); got != "preload2:false preload1:true" {
		t.Errorf("order %s", got)
	}
	if g.running != [2]int{} || g.q.Len() != 0 {
		t.Errorf("gate left with running=%v queued=%d", g.running, g.q.Len())
	}
}

// TestPromotePausedReader: a background reader waiting for the bucket to
// fill is served as an interactive one once its load became interactive.
func TestPromotePausedReader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, err := New(Config{BaseURL: "http://127.0.0.1:9", BytesPerSecond: 1000, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		b := c.bw.limiter()
		if _, err := b.wait(context.Background(), 1000); err != nil { // the burst
			t.Fatal(err)
		}
		var bg atomic.Bool
		bg.Store(true)
		start := time.Now()
		done := make(chan time.Duration)
		go func() {
			if _, err := b.wait(WithBackground(context.Background(), bg.Load), 500); err != nil {
				t.Error(err)
			}
			done <- time.Since(start)
		}()
		synctest.Wait()
		bg.Store(false)
		c.Promote()
		// Interactive, it takes 500 bytes at 1000 B/s: 0.5 s. Background,
		// it would wait for the full bucket, 1050 bytes.
		if took := <-done; took > 600*time.Millisecond {
			t.Errorf("the promoted reader waited %v", took)
		}
	})
}
