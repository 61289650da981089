package fetch

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
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
