package fetch

import (
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestSuccessorSharesTheCap: a download running on the old Client and one
// started on its successor are under one cap of 1; resizing the shared
// gate to 2 lets the queued one start.
func TestSuccessorSharesTheCap(t *testing.T) {
	for _, next := range []int{1, 2} {
		o := newOrigin(t)
		release := make(chan struct{})
		data := map[string][]byte{"hold": randBytes(1000, 1), "next": randBytes(1000, 2)}
		for name, b := range data {
			o.mux.HandleFunc("/"+name, func(w http.ResponseWriter, r *http.Request) {
				if name == "hold" {
					<-release
				}
				o.serveBlob(w, r, b)
			})
		}
		cfg := testConfig(o.URL)
		cfg.Concurrency = 1
		old := newClient(t, cfg)
		var wg sync.WaitGroup
		download := func(c *Client, name string) {
			wg.Go(func() {
				a := assetOf(name, data[name])
				a.URL = "/" + name
				if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, newSink(t), nil); err != nil {
					t.Error(err)
				}
			})
		}
		download(old, "hold")
		for o.count("/hold") == 0 {
			time.Sleep(time.Millisecond)
		}
		cfg.Concurrency = next
		cfg.BytesPerSecond = 1 << 30
		succ, err := old.Successor(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if succ.gate != old.gate || succ.bw != old.bw {
			t.Fatal("the successor does not share the gate and the bandwidth limiter")
		}
		download(succ, "next")
		if next == 1 {
			waitQueued(t, succ.gate, 1)
			if o.count("/next") != 0 {
				t.Fatal("the successor's download started beside the old one at a cap of 1")
			}
		} else {
			for o.count("/next") == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		close(release)
		wg.Wait()
		succ.gate.mu.Lock()
		if succ.gate.free != next || len(succ.gate.fg)+len(succ.gate.bg) != 0 {
			t.Errorf("cap %d: gate left with free=%d", next, succ.gate.free)
		}
		succ.gate.mu.Unlock()
	}
}

// TestSuccessorShrinksTheCap: at a smaller cap nothing new starts until
// fewer downloads run than the new cap.
func TestSuccessorShrinksTheCap(t *testing.T) {
	g := newGate(2)
	ctx := ctxT(t)
	for range 2 {
		if err := g.acquire(ctx, false); err != nil {
			t.Fatal(err)
		}
	}
	g.resize(1)
	got := make(chan struct{})
	go func() {
		if err := g.acquire(ctx, false); err == nil {
			close(got)
		}
	}()
	waitQueued(t, g, 1)
	g.release()
	g.mu.Lock()
	queued := len(g.fg)
	g.mu.Unlock()
	if queued != 1 {
		t.Fatal("a waiter started with as many downloads running as the new cap")
	}
	g.release()
	<-got
	g.release()
	if g.free != 1 {
		t.Errorf("free=%d, want 1", g.free)
	}
}
