package fetch

import (
	"github.com/assetd/assetd/internal/testkit"

	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

const benchSize = 64 << 20

// benchDownload downloads 64 MiB from a loopback origin that serves it
// from a file (sendfile, as a static origin or CDN does) into sink,
// verified, b.N times.
func benchDownload(b *testing.B, sink Sink) {
	data := randBytes(benchSize, 99)
	src := filepath.Join(b.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o644); err != nil {
		b.Fatal(err)
	}
	o := testkit.NewOrigin(b)
	o.Handle("/v1/blobs/sha256/"+digest(data), func(w http.ResponseWriter, r *http.Request) {
		http.ServeFile(w, r, src)
	})
	cfg := testConfig(o.URL())
	cfg.Logger = slog.New(slog.DiscardHandler)
	c := newClient(b, cfg)
	a := assetOf("model.splat", data)
	ctx := context.Background()
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := sink.Truncate(); err != nil {
			b.Fatal(err)
		}
		if err := c.Download(ctx, Blob{AvatarID: "rohan", Asset: a}, sink, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDownload is the whole download path: the retry and limit
// layers, the watchdog, the read-ahead pump and a file sink in
// b.TempDir() that hashes while writing. BenchmarkSHA256 is its ceiling.
func BenchmarkDownload(b *testing.B) {
	benchDownload(b, openSink(b, filepath.Join(b.TempDir(), "data")))
}

// BenchmarkDownloadNoDisk is the same with a sink that only hashes: the
// download path without the disk.
func BenchmarkDownloadNoDisk(b *testing.B) {
	benchDownload(b, &hashSink{h: sha256.New()})
}

func BenchmarkSHA256(b *testing.B) {
	data := randBytes(benchSize, 99)
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		h := sha256.New()
		for off := 0; off < len(data); off += copyBufferSize {
			h.Write(data[off : off+copyBufferSize])
		}
		h.Sum(nil)
	}
}

type hashSink struct {
	h hash.Hash
	n int64
}

func (s *hashSink) Write(p []byte) (int, error) {
	s.h.Write(p)
	s.n += int64(len(p))
	return len(p), nil
}
func (s *hashSink) Size() int64     { return s.n }
func (s *hashSink) Digest() string  { return hex.EncodeToString(s.h.Sum(nil)) }
func (s *hashSink) Truncate() error { s.h.Reset(); s.n = 0; return nil }
