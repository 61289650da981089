package bench

import (
	"context"
	"crypto/ed25519"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/assetd/assetd/internal/config"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/manager"
	"github.com/assetd/assetd/internal/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if coldOrigin.dir != "" {
		os.RemoveAll(coldOrigin.dir)
	}
	os.Exit(code)
}

// coldOrigin publishes the benchmark's 20 avatars once per process.
var coldOrigin struct {
	once sync.Once
	dir  string
	ids  []string
	size int64
	err  error
}

func publishedTree(b *testing.B) (dir string, ids []string, size int64) {
	o := &coldOrigin
	o.once.Do(func() {
		if o.dir, o.err = os.MkdirTemp("", "assetd-bench-origin-"); o.err != nil {
			return
		}
		avatars := Avatars(20)
		o.ids = IDs(avatars)
		src, out := filepath.Join(o.dir, "src"), filepath.Join(o.dir, "site")
		if o.err = WriteSource(src, avatars, Version); o.err != nil {
			return
		}
		if o.err = Publish(context.Background(), src, out); o.err != nil {
			return
		}
		items, err := Items(out, o.ids)
		o.size, o.err = TotalSize(items), err
	})
	if o.err != nil {
		b.Fatal(o.err)
	}
	return filepath.Join(o.dir, "site"), o.ids, o.size
}

// BenchmarkColdLoad is the daemon's part of a cold `assetd preload` of 20
// avatars of 8 MiB, in process: manager.Load of every avatar at once into
// an empty store, from an httptest origin on loopback, with the shipped
// fetch settings except the request rate limit (lifted: this is the profile
// of the work, not of the waiting). Run it with -cpuprofile/-memprofile.
// The store is on the disk, and again in /dev/shm (tmpfs) where there is
// one: there fsync costs nothing, so the difference is what durability
// costs.
func BenchmarkColdLoad(b *testing.B) {
	b.Run("disk", func(b *testing.B) { coldLoad(b, "") })
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		b.Run("tmpfs", func(b *testing.B) { coldLoad(b, "/dev/shm") })
	}
}

func coldLoad(b *testing.B, parent string) {
	site, ids, size := publishedTree(b)
	srv := httptest.NewServer(NewOrigin(site))
	defer srv.Close()
	keys := []ed25519.PublicKey{Key().Public().(ed25519.PublicKey)}
	f := config.Default().Fetch
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		dir, err := os.MkdirTemp(parent, "assetd-bench-store-")
		if err != nil {
			b.Fatal(err)
		}
		st, err := store.Open(dir, store.Options{})
		if err != nil {
			b.Fatal(err)
		}
		fc, err := fetch.New(fetch.Config{
			BaseURL: srv.URL, AppID: "bench", TrustedKeys: keys,
			Concurrency: f.Concurrency, MaxRetries: f.MaxRetries,
			RetryWaitMin: f.RetryWaitMin.Std(), RetryWaitMax: f.RetryWaitMax.Std(),
			AttemptTimeout: f.AttemptTimeout.Std(), StallWindow: f.StallWindow.Std(),
			StallMinBytesPerSecond: int64(f.StallMinBytesPerSecond),
			MaxAssetBytes:          int64(f.MaxAssetBytes),
		})
		if err != nil {
			b.Fatal(err)
		}
		m := manager.New(st, fc, manager.Options{})
		b.StartTimer()
		var wg sync.WaitGroup
		for _, id := range ids {
			wg.Go(func() {
				if _, err := m.Load(b.Context(), id, manager.LoadOptions{}); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		m.Close()
		fc.Close()
		st.Close()
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
