package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/testkit"
)

func TestDownload(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(3<<20+17, 4)
	o.AddBlob(data)
	c := newClient(t, testConfig(o.URL()))
	sink := newSink(t)
	var got int64
	err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: assetOf("model.splat", data)}, sink, func(d int64) { got += d })
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.bytes(t), data) || got != int64(len(data)) {
		t.Fatalf("sink holds %d bytes, progress %d, want %d", sink.Size(), got, len(data))
	}
	st := c.Stats()
	if st.Requests != 1 || st.Retries != 0 || st.BytesDownloaded != uint64(len(data)) {
		t.Errorf("Stats = %+v", st)
	}
	if h := o.Headers()[0]; h.Get("Range") != "" || h.Get("Authorization") == "" {
		t.Errorf("headers %v", h)
	}
	// a complete sink is verified without a request
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: assetOf("model.splat", data)}, sink, nil); err != nil {
		t.Fatal(err)
	}
	if o.TotalHits() != 1 {
		t.Errorf("%d requests for a complete sink", o.TotalHits())
	}
}

func TestDownloadEmptyAsset(t *testing.T) {
	o := testkit.NewOrigin(t)
	c := newClient(t, testConfig(o.URL()))
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: assetOf("empty", nil)}, newSink(t), nil); err != nil {
		t.Fatal(err)
	}
}

// TestResumeAfterCut: the connection dies mid-body; the retry asks for the
// rest with Range and little is fetched twice.
func TestResumeAfterCut(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(8<<20, 5)
	const cut = 3 << 20
	var first atomic.Bool
	o.Handle("/blob", func(w http.ResponseWriter, r *http.Request) {
		if first.CompareAndSwap(false, true) {
			conn, buf, _ := w.(http.Hijacker).Hijack()
			defer conn.Close()
			fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", len(data))
			buf.Write(data[:cut])
			buf.Flush()
			o.BytesSent.Add(cut)
			return
		}
		o.ServeBlob(w, r, data)
	})
	c := newClient(t, testConfig(o.URL()))
	a := assetOf("model.splat", data)
	a.URL = "/blob"
	sink := newSink(t)
	var progress int64
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, sink, func(d int64) { progress += d }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.bytes(t), data) || progress != int64(len(data)) {
		t.Fatalf("sink %d bytes, progress %d", sink.Size(), progress)
	}
	if twice := o.SentWhenIdle() - int64(len(data)); twice < 0 || twice >= 1<<20 {
		t.Errorf("served %d bytes for %d: %d fetched twice", o.SentWhenIdle(), len(data), twice)
	}
	if h := o.Headers()[1]; h.Get("Range") == "" {
		t.Errorf("the retry had no Range: %v", h)
	}
	if st := c.Stats(); st.Requests != 2 || st.Retries != 1 {
		t.Errorf("Stats = %+v", st)
	}
}

// TestResumeFromPartial: a partial left by an earlier process is resumed.
func TestResumeFromPartial(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(1<<20, 6)
	o.AddBlob(data)
	c := newClient(t, testConfig(o.URL()))
	sink := newSink(t)
	sink.Write(data[:600_000])
	sink = openSink(t, sink.f.Name()) // a new process re-hashes the partial
	var progress int64
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: assetOf("a", data)}, sink, func(d int64) { progress += d }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.bytes(t), data) {
		t.Fatal("wrong bytes")
	}
	if got := o.Headers()[0].Get("Range"); got != "bytes=600000-" {
		t.Errorf("Range = %q", got)
	}
	if o.SentWhenIdle() != int64(len(data))-600_000 || progress != int64(len(data))-600_000 {
		t.Errorf("served %d, progress %d", o.SentWhenIdle(), progress)
	}
}

// TestRanged200: an origin that ignores Range answers 200; the sink
// restarts cleanly and progress goes back.
func TestRanged200(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(100_000, 7)
	o.Handle("/blob", func(w http.ResponseWriter, _ *http.Request) { w.Write(data) })
	c := newClient(t, testConfig(o.URL()))
	a := assetOf("a", data)
	a.URL = "/blob"
	sink := newSink(t)
	sink.Write(data[:40_000])
	var deltas []int64
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, sink, func(d int64) { deltas = append(deltas, d) }); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.bytes(t), data) || deltas[0] != -40_000 {
		t.Fatalf("sink %d bytes, deltas %v", sink.Size(), deltas[:1])
	}
	if o.Headers()[0].Get("Range") != "bytes=40000-" || o.TotalHits() != 1 {
		t.Errorf("requests %d, Range %q", o.TotalHits(), o.Headers()[0].Get("Range"))
	}
}

// Test416: a 416 to a resume (the partial is not the origin's) restarts
// from zero.
func Test416(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(50_000, 8)
	o.Handle("/blob", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			w.Header().Set("Content-Range", "bytes */"+strconv.Itoa(len(data)))
			w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
			return
		}
		w.Write(data)
	})
	c := newClient(t, testConfig(o.URL()))
	a := assetOf("a", data)
	a.URL = "/blob"
	sink := newSink(t)
	sink.Write(data[:10])
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, sink, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.bytes(t), data) || o.TotalHits() != 2 {
		t.Fatalf("sink %d bytes after %d requests", sink.Size(), o.TotalHits())
	}
}

// TestTrickle: a server sending a byte every 20ms is aborted by the stall
// watchdog and, once retries are spent, fails with reason stalled.
func TestTrickle(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(100_000, 9)
	o.Handle("/blob", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		for i := 0; i < len(data); i++ {
			if _, err := w.Write(data[i : i+1]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	for _, bps := range []int64{0, 1 << 20} { // a bandwidth limit does not hide a stall
		t.Run(fmt.Sprintf("bandwidth %d", bps), func(t *testing.T) {
			cfg := testConfig(o.URL())
			cfg.StallWindow = 200 * time.Millisecond
			cfg.StallMinBytesPerSecond = 1024
			cfg.MaxRetries = 1
			cfg.BytesPerSecond = bps
			c := newClient(t, cfg)
			a := assetOf("a", data)
			a.URL = "/blob"
			before := o.TotalHits()
			err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, newSink(t), nil)
			if !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonStalled}) || !errs.IsTransient(err) {
				t.Fatalf("err = %v", err)
			}
			if n := o.TotalHits() - before; n != 2 {
				t.Errorf("%d requests, want 2", n)
			}
		})
	}
}

// TestAttemptTimeout: headers that do not come within AttemptTimeout end
// the attempt; a body that keeps flowing is not cut at AttemptTimeout.
func TestAttemptTimeout(t *testing.T) {
	o := testkit.NewOrigin(t)
	o.Handle("/v1/avatars/slow/manifest", func(_ http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	data := randBytes(64<<10, 10)
	o.Handle("/steady", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		for i := 0; i < len(data); i += 4 << 10 {
			w.Write(data[i : i+4<<10])
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(50 * time.Millisecond): // 16 chunks: about 800ms
			}
		}
	})
	cfg := testConfig(o.URL())
	cfg.AttemptTimeout = 300 * time.Millisecond
	cfg.StallWindow = 300 * time.Millisecond
	cfg.StallMinBytesPerSecond = 1024
	c := newClient(t, cfg)
	_, err := c.Manifest(ctxT(t), "slow", "")
	if !errors.Is(err, &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonTimeout}) || !errs.IsTransient(err) {
		t.Fatalf("err = %v", err)
	}
	if n := o.TotalHits(); n != cfg.MaxRetries+1 {
		t.Errorf("%d requests", n)
	}
	a := assetOf("a", data)
	a.URL = "/steady"
	if err := c.Download(ctxT(t), Blob{AvatarID: "steady", Asset: a}, newSink(t), nil); err != nil {
		t.Fatalf("steady body: %v", err)
	}
	if n := o.Hits("/steady"); n != 1 {
		t.Errorf("steady body took %d requests", n)
	}
}

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	o := testkit.NewOrigin(t)
	var n atomic.Int32
	o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, _ *http.Request) {
		if n.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.Write(manifestDoc("rohan"))
	})
	o.Handle("/v1/avatars/later/manifest", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	})
	o.Handle("/v1/avatars/down/manifest", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	cfg := testConfig(o.URL())
	cfg.RetryWaitMax = 2 * time.Second
	c := newClient(t, cfg)
	start := time.Now()
	if _, err := c.Manifest(ctxT(t), "rohan", ""); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < time.Second {
		t.Errorf("retried after %v, before Retry-After's 1s", d)
	}
	_, err := c.Manifest(ctxT(t), "later", "")
	e := errs.From(err)
	if e.Code != errcode.ConcurrentLimitExceeded || e.Reason != errcode.ReasonRetryAfterTooLong || !e.Transient {
		t.Fatalf("err = %v (reason %q)", err, e.Reason)
	}
	if n := o.Hits("/v1/avatars/later/manifest"); n != 1 {
		t.Errorf("a Retry-After beyond RetryWaitMax was retried: %d requests", n)
	}
	_, err = c.Manifest(ctxT(t), "down", "")
	if e := errs.From(err); e.Code != errcode.FailedToFetchAvatarMetadata || e.Reason != "http503" || !e.Transient {
		t.Fatalf("503: err = %v", err)
	}
	if n := o.Hits("/v1/avatars/down/manifest"); n != 1 {
		t.Errorf("a 503 with a Retry-After beyond RetryWaitMax was retried: %d requests", n)
	}
}

// TestLongerBody: a body longer than the size is rejected, whether its
// Content-Length says so or it is cut off while streaming (chunked).
func TestLongerBody(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(1<<20, 11)
	long := append(bytes.Clone(data), "extra"...)
	o.Handle("/blob", func(w http.ResponseWriter, _ *http.Request) { w.Write(long) })
	o.Handle("/chunked", func(w http.ResponseWriter, _ *http.Request) {
		w.(http.Flusher).Flush()
		w.Write(long)
	})
	cfg := testConfig(o.URL())
	c := newClient(t, cfg)
	for _, path := range []string{"/blob", "/chunked"} {
		a := assetOf("a", data)
		a.URL = path
		sink := newSink(t)
		err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, sink, nil)
		if !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonSizeMismatch}) {
			t.Fatalf("%s: err = %v", path, err)
		}
		if n := o.Hits(path); n != cfg.MaxHashRetries+1 {
			t.Errorf("%s: %d requests, want %d", path, n, cfg.MaxHashRetries+1)
		}
		if sink.Size() > a.Size {
			t.Errorf("%s: sink holds %d bytes, more than the size", path, sink.Size())
		}
	}
}

func TestShorterBody(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(10_000, 12)
	var n atomic.Int32
	o.Handle("/flaky", func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			w.Write(data[:4000]) // a clean but short body
			return
		}
		o.ServeBlob(w, r, data)
	})
	o.Handle("/short", func(w http.ResponseWriter, r *http.Request) { o.ServeBlob(w, r, data[:4000]) })
	cfg := testConfig(o.URL())
	c := newClient(t, cfg)
	a := assetOf("a", data)
	a.URL = "/flaky"
	sink := newSink(t)
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, sink, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.bytes(t), data) || o.Hits("/flaky") != 2 || o.Headers()[1].Get("Range") != "bytes=4000-" {
		t.Fatalf("flaky: %d bytes, %d requests", sink.Size(), o.Hits("/flaky"))
	}
	a.URL = "/short"
	err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, newSink(t), nil)
	if !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonSizeMismatch}) || !errs.IsTransient(err) {
		t.Fatalf("short: %v", err)
	}
	if n := o.Hits("/short"); n != cfg.MaxRetries+1 {
		t.Errorf("short: %d requests, want %d", n, cfg.MaxRetries+1)
	}
}

func TestWrongHash(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(10_000, 13)
	bad := bytes.Clone(data)
	bad[5000] ^= 1
	o.Handle("/blob", func(w http.ResponseWriter, r *http.Request) { o.ServeBlob(w, r, bad) })
	cfg := testConfig(o.URL())
	c := newClient(t, cfg)
	a := assetOf("a", data)
	a.URL = "/blob"
	var progress int64
	err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, newSink(t), func(d int64) { progress += d })
	e := errs.From(err)
	if e.Code != errcode.FailedToDownloadAvatarAssets || e.Reason != errcode.ReasonHashMismatch || e.Phase != errcode.PhaseVerify || e.Asset != "a" {
		t.Fatalf("err = %v", err)
	}
	if n := o.TotalHits(); n != cfg.MaxHashRetries+1 {
		t.Errorf("%d requests, want %d", n, cfg.MaxHashRetries+1)
	}
	if st := c.Stats(); st.Retries != uint64(cfg.MaxHashRetries) {
		t.Errorf("Stats = %+v", st)
	}
	if progress != int64(len(data)) {
		t.Errorf("progress nets %d", progress)
	}
}

type fullDisk struct{ *fileSink }

func (fullDisk) Write([]byte) (int, error) { return 0, syscall.ENOSPC }

func TestSinkFull(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(10_000, 14)
	o.AddBlob(data)
	c := newClient(t, testConfig(o.URL()))
	err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: assetOf("a", data)}, fullDisk{newSink(t)}, nil)
	e := errs.From(err)
	if e.Code != errcode.FailedToDownloadAvatarAssets || e.Reason != errcode.ReasonInsufficientStorage || e.Transient || e.Phase != errcode.PhaseStore {
		t.Fatalf("err = %v", err)
	}
	if o.TotalHits() != 1 {
		t.Errorf("%d requests", o.TotalHits())
	}
}

// TestCancelNotRetried: a cancelled context ends at once, as Cancelled.
func TestCancelNotRetried(t *testing.T) {
	o := testkit.NewOrigin(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, _ *http.Request) {
		cancel()
		w.WriteHeader(503)
	})
	cfg := testConfig(o.URL())
	cfg.RetryWaitMin, cfg.RetryWaitMax = time.Second, time.Second
	c := newClient(t, cfg)
	_, err := c.Manifest(ctx, "rohan", "")
	if !errors.Is(err, errcode.Cancelled) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if n := o.TotalHits(); n != 1 {
		t.Errorf("%d requests", n)
	}
}
