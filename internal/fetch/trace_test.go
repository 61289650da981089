package fetch

import (
	"github.com/assetd/assetd/internal/testkit"

	"bytes"
	"net"
	"net/http"
	"runtime"
	"slices"
	"sync"
	"testing"
)

type traced struct {
	mu      sync.Mutex
	retries []string
	queued  []bool
}

func (r *traced) trace() *Trace {
	return &Trace{
		Queued: func(q bool) { r.mu.Lock(); r.queued = append(r.queued, q); r.mu.Unlock() },
		Retrying: func(attempt, max int, cause string) {
			r.mu.Lock()
			r.retries = append(r.retries, string(rune('0'+attempt))+"/"+string(rune('0'+max))+" "+cause)
			r.mu.Unlock()
		},
	}
}

// TestTraceRetrying: each retry is reported before its wait, with the
// attempt to come, the most there are, and why the last one failed.
func TestTraceRetrying(t *testing.T) {
	o := testkit.NewOrigin(t)
	fails := 2
	o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, r *http.Request) {
		fail := o.Hits(r.URL.Path) <= fails
		if fail {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write(manifestDoc("rohan"))
	})
	cfg := testConfig(o.URL())
	cfg.MaxRetries = 4
	c := newClient(t, cfg)
	var rec traced
	if _, err := c.Manifest(WithTrace(ctxT(t), rec.trace()), "rohan", ""); err != nil {
		t.Fatal(err)
	}
	want := []string{"2/5 HTTP 503 Service Unavailable", "3/5 HTTP 503 Service Unavailable"}
	if !slices.Equal(rec.retries, want) {
		t.Errorf("retries %q, want %q", rec.retries, want)
	}

	// Nothing listens: the system's words.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	c = newClient(t, testConfig(dead))
	rec = traced{}
	if _, err := c.Manifest(WithTrace(ctxT(t), rec.trace()), "rohan", ""); err == nil {
		t.Fatal("a closed port answered")
	}
	want = []string{"2/3 connection refused", "3/3 connection refused"}
	if !slices.Equal(rec.retries, want) {
		t.Errorf("retries %q, want %q", rec.retries, want)
	}
}

// TestTraceQueued: a download waiting for a slot says so, and says when
// it has one.
func TestTraceQueued(t *testing.T) {
	g := newGate(1)
	ctx := ctxT(t)
	if err := g.acquire(ctx, false); err != nil {
		t.Fatal(err)
	}
	var rec traced
	got := make(chan error)
	go func() { got <- g.acquire(WithTrace(ctx, rec.trace()), true) }()
	for {
		rec.mu.Lock()
		n := len(rec.queued)
		rec.mu.Unlock()
		if n > 0 {
			break
		}
		select {
		case err := <-got:
			t.Fatalf("acquired a full gate: %v", err)
		default:
		}
		runtime.Gosched()
	}
	g.release(false)
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	g.release(false)
	if !slices.Equal(rec.queued, []bool{true, false}) {
		t.Errorf("queued reports %v, want [true false]", rec.queued)
	}
}

// TestTraceHashRetry: a download whose bytes fail their sha256 is
// downloaded again, and the trace says so.
func TestTraceHashRetry(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(10_000, 13)
	bad := bytes.Clone(data)
	bad[5000] ^= 1
	o.Handle("/blob", func(w http.ResponseWriter, r *http.Request) { o.ServeBlob(w, r, bad) })
	cfg := testConfig(o.URL())
	c := newClient(t, cfg)
	a := assetOf("a", data)
	a.URL = "/blob"
	var rec traced
	if err := c.Download(WithTrace(ctxT(t), rec.trace()), Blob{AvatarID: "rohan", Asset: a}, newSink(t), nil); err == nil {
		t.Fatal("bad bytes were accepted")
	}
	want := []string{"2/3 sha256 mismatch", "3/3 sha256 mismatch"}
	if !slices.Equal(rec.retries, want) {
		t.Errorf("retries %q, want %q", rec.retries, want)
	}
}
