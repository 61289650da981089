package fetch

import (
	"github.com/assetd/assetd/internal/testkit"

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
		o := testkit.NewOrigin(t)
		release := make(chan struct{})
		data := map[string][]byte{"hold": randBytes(1000, 1), "next": randBytes(1000, 2)}
		for name, b := range data {
			o.Handle("/"+name, func(w http.ResponseWriter, r *http.Request) {
				if name == "hold" {
					<-release
				}
				o.ServeBlob(w, r, b)
			})
		}
		cfg := testConfig(o.URL())
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
		for o.Hits("/hold") == 0 {
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
			if o.Hits("/next") != 0 {
				t.Fatal("the successor's download started beside the old one at a cap of 1")
			}
		} else {
			for o.Hits("/next") == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		close(release)
		wg.Wait()
		succ.gate.mu.Lock()
		if succ.gate.size != next || succ.gate.running != [2]int{} || succ.gate.q.Len() != 0 {
			t.Errorf("cap %d: gate left with size=%d running=%v", next, succ.gate.size, succ.gate.running)
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
	g.release(false)
	g.mu.Lock()
	queued := g.q.Len()
	g.mu.Unlock()
	if queued != 1 {
		t.Fatal("a waiter started with as many downloads running as the new cap")
	}
	g.release(false)
	<-got
	g.release(false)
	if g.running != [2]int{} {
		t.Errorf("running=%v, want none", g.running)
	}
}

// TestSuccessorCounters: requests the old Client makes after the hand-over
// are its successor's share; the old Client's final Stats plus the
// successor's are every request.
func TestSuccessorCounters(t *testing.T) {
	o := testkit.NewOrigin(t)
	o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, _ *http.Request) {
		w.Write(manifestDoc("rohan"))
	})
	cfg := testConfig(o.URL())
	old := newClient(t, cfg)
	manifest := func(c *Client) {
		if _, err := c.Manifest(ctxT(t), "rohan", ""); err != nil {
			t.Fatal(err)
		}
	}
	manifest(old)
	succ, err := old.Successor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Successor(cfg); err == nil {
		t.Error("a second successor of one client")
	}
	manifest(old) // a load still running on the old client
	manifest(succ)
	if got := old.Stats().Requests; got != 1 {
		t.Errorf("old client: %d requests, want the 1 before the hand-over", got)
	}
	if got := succ.Stats().Requests; got != 2 {
		t.Errorf("successor: %d requests, want 2", got)
	}
	if sum := old.Stats().Requests + succ.Stats().Requests; sum != uint64(o.TotalHits()) {
		t.Errorf("Stats add up to %d requests, the origin saw %d", sum, o.TotalHits())
	}
	bad := cfg
	bad.BaseURL = "ftp://x"
	if _, err := succ.Successor(bad); err != nil {
		if _, err := succ.Successor(cfg); err != nil {
			t.Errorf("an invalid configuration used up the succession: %v", err)
		}
	} else {
		t.Error("an invalid configuration was accepted")
	}
}
