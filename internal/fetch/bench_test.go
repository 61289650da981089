package fetch

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"path/filepath"
	"testing"
)

const benchSize = 64 << 20

// BenchmarkDownload is the whole download path: a loopback origin, the
// retry and limit layers, the watchdog, and a file sink that hashes while
// writing, verified at the end. BenchmarkSHA256 is its ceiling.
func BenchmarkDownload(b *testing.B) {
	o := newOrigin(b)
	data := randBytes(benchSize, 99)
	o.blob(data)
	cfg := testConfig(o.URL)
	cfg.Logger = slog.New(slog.DiscardHandler)
	c := newClient(b, cfg)
	a := assetOf("model.splat", data)
	sink := openSink(b, filepath.Join(b.TempDir(), "data"))
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
