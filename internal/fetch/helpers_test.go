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
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assetd/assetd/internal/manifest"
)

// fileSink is a file-backed Sink that hashes while writing and, opened on
// a partial file, re-hashes what is there (as the store's ingest writer
// does).
type fileSink struct {
	f *os.File
	h hash.Hash
	n int64
}

func openSink(tb testing.TB, path string) *fileSink {
	tb.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	s := &fileSink{f: f, h: sha256.New()}
	n, err := io.Copy(s.h, f)
	if err != nil {
		tb.Fatal(err)
	}
	s.n = n
	return s
}

func newSink(tb testing.TB) *fileSink {
	return openSink(tb, filepath.Join(tb.TempDir(), "data"))
}

// Write writes p, then hashes what the file took, on the caller's
// goroutine, as store.Writer.Write does.
func (s *fileSink) Write(p []byte) (int, error) {
	n, err := s.Store(p)
	s.Hash(p[:n])
	return n, err
}

// Store and Hash are Write's two halves, as store.Writer's are: Store
// writes without hashing, Hash hashes the next bytes Store took.
func (s *fileSink) Store(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.n += int64(n)
	return n, err
}

func (s *fileSink) Hash(p []byte) { s.h.Write(p) }

func (s *fileSink) Size() int64    { return s.n }
func (s *fileSink) Digest() string { return hex.EncodeToString(s.h.Sum(nil)) }

func (s *fileSink) Truncate() error {
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	s.h.Reset()
	s.n = 0
	return nil
}

func (s *fileSink) bytes(tb testing.TB) []byte {
	tb.Helper()
	b, err := os.ReadFile(s.f.Name())
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func assetOf(path string, data []byte) manifest.Asset {
	return manifest.Asset{Path: path, Size: int64(len(data)), SHA256: digest(data)}
}

// origin is an httptest origin on 127.0.0.1 that counts requests by path
// and records the headers it was sent.
type origin struct {
	*httptest.Server
	mux *http.ServeMux

	mu      sync.Mutex
	counts  map[string]int
	headers []http.Header
	served  int64 // body bytes written by serveBlob
	active  int   // handlers running
}

func newOrigin(t testing.TB) *origin {
	o := &origin{mux: http.NewServeMux(), counts: map[string]int{}}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o.mu.Lock()
		o.counts[r.URL.Path]++
		o.headers = append(o.headers, r.Header.Clone())
		o.active++
		o.mu.Unlock()
		defer func() {
			o.mu.Lock()
			o.active--
			o.mu.Unlock()
		}()
		o.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(o.Close)
	return o
}

func (o *origin) count(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[path]
}

func (o *origin) total() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.counts {
		n += c
	}
	return n
}

// servedBytes is the body bytes served once every handler has returned
// (waiting up to 10 s): a client can read the last bytes before the
// handler's Write returns and counts them.
func (o *origin) servedBytes() int64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		o.mu.Lock()
		served, active := o.served, o.active
		o.mu.Unlock()
		if active == 0 || time.Now().After(deadline) {
			return served
		}
		time.Sleep(time.Millisecond)
	}
}

// countingWriter counts the body bytes a handler wrote.
type countingWriter struct {
	http.ResponseWriter
	o *origin
}

func (w countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.o.mu.Lock()
	w.o.served += int64(n)
	w.o.mu.Unlock()
	return n, err
}

// serveBlob serves data with Range support, counting the bytes sent.
func (o *origin) serveBlob(w http.ResponseWriter, r *http.Request, data []byte) {
	http.ServeContent(countingWriter{w, o}, r, "", time.Time{}, bytes.NewReader(data))
}

func (o *origin) blob(data []byte) string {
	d := digest(data)
	o.mux.HandleFunc("/v1/blobs/sha256/"+d, func(w http.ResponseWriter, r *http.Request) { o.serveBlob(w, r, data) })
	return "/v1/blobs/sha256/" + d
}

func manifestDoc(id string, assets ...manifest.Asset) []byte {
	parts := make([]string, len(assets))
	for i, a := range assets {
		u := ""
		if a.URL != "" {
			u = fmt.Sprintf(`,"url":%q`, a.URL)
		}
		parts[i] = fmt.Sprintf(`{"path":%q,"size":%d,"sha256":%q%s}`, a.Path, a.Size, a.SHA256, u)
	}
	return []byte(fmt.Sprintf(`{"schema":1,"avatarId":%q,"version":"1","assets":[%s]}`, id, strings.Join(parts, ",")))
}

const testToken = "tok-SECRET-7f3a9c"

// testConfig keeps every wait tiny.
func testConfig(base string) Config {
	return Config{
		BaseURL:                base,
		AppID:                  "app-1",
		Token:                  func() string { return testToken },
		MaxRetries:             2,
		RetryWaitMin:           time.Millisecond,
		RetryWaitMax:           5 * time.Millisecond,
		AttemptTimeout:         5 * time.Second,
		StallWindow:            5 * time.Second,
		StallMinBytesPerSecond: 1,
		MaxHashRetries:         2,
		Concurrency:            4,
	}
}

func newClient(t testing.TB, cfg Config) *Client {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}
