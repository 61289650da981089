package store

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/assetd/assetd/internal/manifest"
)

// benchStore is a store built once per test binary for the Open
// benchmarks, removed by TestMain.
type benchStore struct {
	once sync.Once
	dir  string
	err  error
}

var bench10k, bench100k, benchGC benchStore

// get builds the store on first use: n avatars with own blobs of their
// own each and one of pool blobs shared round-robin.
func (bs *benchStore) get(b *testing.B, n, own, pool int) string {
	bs.once.Do(func() {
		bs.dir, bs.err = os.MkdirTemp("", "assetd-store-bench-")
		if bs.err == nil {
			bs.err = buildStore(bs.dir, n, own, pool)
		}
	})
	if bs.err != nil {
		b.Fatal(bs.err)
	}
	return bs.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, bs := range []*benchStore{&bench10k, &bench100k, &benchGC} {
		if bs.dir != "" {
			os.RemoveAll(bs.dir)
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// buildStore writes a store of n avatars directly (files, then one index
// transaction), as n Puts would leave it: each avatar has own small blobs
// of its own and one of pool shared blobs (avatar i the (i mod pool)th),
// and avatar i was last used at i+1.
func buildStore(dir string, n, own, pool int) error {
	s, err := Open(dir, Options{})
	if err != nil {
		return err
	}
	var files [][]byte // written by several workers: a file each costs a journal wait more than a CPU
	write := func(data []byte) (manifest.Asset, error) {
		files = append(files, data)
		return manifest.Asset{Size: int64(len(data)), SHA256: digestOf(data)}, nil
	}
	shared := make([]manifest.Asset, pool)
	blobs := map[string]blobRec{}
	for k := range pool {
		data := []byte("shared by every avatar")
		if pool > 1 {
			data = fmt.Appendf(nil, "shared %d", k)
		}
		a, err := write(data)
		if err != nil {
			return err
		}
		a.Path = "common.bin"
		shared[k] = a
		blobs[a.SHA256] = blobRec{size: a.Size, refs: int64((n + pool - 1 - k) / pool), committed: 1}
	}
	type record struct {
		id       string
		v, raw   []byte
		lastUsed uint64
	}
	records := make([]record, 0, n)
	for i := range n {
		id := fmt.Sprintf("avatar-%05d", i)
		m := &manifest.Manifest{Schema: 1, AvatarID: id, Version: "v1", Assets: []manifest.Asset{shared[i%pool]}}
		for _, p := range []string{"body.splat", "pose.json", "anim.bin", "texture.bin"}[:own] {
			a, err := write([]byte(id + "/" + p))
			if err != nil {
				return err
			}
			a.Path = p
			m.Assets = append(m.Assets, a)
			blobs[a.SHA256] = blobRec{size: a.Size, refs: 1, committed: 1}
		}
		raw, _ := json.Marshal(m)
		a := Avatar{ID: id, Version: "v1", Manifest: m, RawManifest: raw, Source: "origin", State: StateReady}
		v, err := encodeAvatar(&a)
		if err != nil {
			return err
		}
		records = append(records, record{id, v, raw, uint64(i + 1)})
	}
	var g errgroup.Group
	const workers = 8
	for w := range workers {
		g.Go(func() error {
			for i := w; i < len(files); i += workers {
				if err := os.WriteFile(s.BlobPath(digestOf(files[i])), files[i], 0o444); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	// In key order: bbolt inserts them quickly (the pages are the same).
	slices.SortFunc(records, func(a, b record) int { return cmp.Compare(a.id, b.id) })
	ds := slices.Sorted(maps.Keys(blobs))
	err = s.db.Update(func(tx *bolt.Tx) error {
		av, raw, used, bl := tx.Bucket(bucketAvatars), tx.Bucket(bucketRaw), tx.Bucket(bucketLastUsed), tx.Bucket(bucketBlobs)
		for _, r := range records {
			if err := errors.Join(av.Put([]byte(r.id), r.v), raw.Put([]byte(r.id), r.raw),
				used.Put([]byte(r.id), u64(r.lastUsed))); err != nil {
				return err
			}
		}
		for _, d := range ds {
			if err := bl.Put([]byte(d), blobs[d].encode()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.Close()
}

func BenchmarkOpen10k(b *testing.B) { benchOpen(b, bench10k.get(b, 10000, 2, 1), 10000, 20001) }

// BenchmarkOpen100k opens a store of 100,000 avatars and 300,001 blobs
// (issue 15: ≤ 1 s to a ready daemon) and reports the heap the open
// store holds per avatar.
func BenchmarkOpen100k(b *testing.B) { benchOpen(b, bench100k.get(b, 100000, 3, 1), 100000, 300001) }

func benchOpen(b *testing.B, dir string, avatars, blobs int) {
	before := heapInUse()
	s, err := Open(dir, Options{})
	if err != nil {
		b.Fatal(err)
	}
	<-s.checking.done // what the open store holds, not its size check's list
	heap := heapInUse() - before
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if n := len(s.avatars); n != avatars {
			b.Fatalf("%d avatars", n)
		}
		if st := s.Stats(); st.Damaged != 0 || st.Blobs != blobs {
			b.Fatalf("Stats = %+v", st)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time (user+system) tells more than wall time on a shared machine.
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(heap)/float64(avatars), "heap-B/avatar")
}

// heapInUse is the live heap after a collection. Twice: a first one only
// moves sync.Pools' contents to their victim caches.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

func BenchmarkGet(b *testing.B) {
	s := openT(b, b.TempDir(), Options{})
	defer s.Close()
	putT(b, s, "avatar", "1", map[string]string{"a": "a", "b": "b", "c": "c"})
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := s.Get("avatar"); !ok {
			b.Fatal("not found")
		}
	}
}

func BenchmarkCommit(b *testing.B) {
	s := openT(b, b.TempDir(), Options{})
	defer s.Close()
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		b.StopTimer()
		i++
		binary.BigEndian.PutUint64(data, i)
		d := digestOf(data)
		b.StartTimer()
		w, err := s.Ingest(ctx, d, int64(len(data)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := s.RemoveBlob(d); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkCommitParallel commits 64 KiB blobs from several goroutines at
// once, as a load's blob workers do.
func BenchmarkCommitParallel(b *testing.B) {
	s := openT(b, b.TempDir(), Options{})
	defer s.Close()
	ctx := context.Background()
	var n atomic.Uint64
	txid := func() (id int) {
		s.db.View(func(tx *bolt.Tx) error { id = tx.ID(); return nil })
		return id
	}
	first := txid()
	defer func() { b.ReportMetric(float64(txid()-first)/float64(b.N), "txns/op") }()
	b.SetParallelism(8)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		data := make([]byte, 64<<10)
		for pb.Next() {
			binary.BigEndian.PutUint64(data, n.Add(1))
			d := digestOf(data)
			w, err := s.Ingest(ctx, d, int64(len(data)))
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := w.Write(data); err != nil {
				b.Error(err)
				return
			}
			if err := w.Commit(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkKeepLRU100k times KeepLRU(1000) of a store of 100,000 avatars
// (3 blobs of their own each and one of a pool of 64 shared ones, as the
// scale trial's store: 300,064 blobs), `assetd gc --keep 1000` in the
// store (issue 15), until it returns: the index change and its commit,
// not the background removal of its files (held until Close, which stops
// it before it unlinks any). Each iteration opens a fresh copy of the
// index. cpu-ns/op is the process's CPU time during the calls.
func BenchmarkKeepLRU100k(b *testing.B) {
	const n, keep, blobs = 100000, 1000, 100000*3 + 64
	dir := benchGC.get(b, n, 3, 64)
	index := filepath.Join(dir, "index.db")
	pristine := index + ".pristine"
	if _, err := os.Stat(pristine); err != nil {
		if err := copyFile(index, pristine); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var cpu int64
	for b.Loop() {
		b.StopTimer()
		if err := copyFile(pristine, index); err != nil {
			b.Fatal(err)
		}
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		settle(s)
		if st := s.Stats(); st.Entries != n || st.Blobs != blobs {
			b.Fatalf("Stats = %+v", st)
		}
		setHook(s, func(string) { // until Close stops the removal
			s.remover.mu.Lock()
			stop := s.remover.stop
			s.remover.mu.Unlock()
			<-stop
		})
		cpu0 := cpuTime()
		b.StartTimer()
		removed, err := s.KeepLRU(keep)
		b.StopTimer()
		cpu += cpuTime() - cpu0
		if err != nil || len(removed) != n-keep {
			b.Fatalf("KeepLRU removed %d, %v", len(removed), err)
		}
		if st := s.Stats(); st.Entries != keep || st.Blobs != keep*3+64 {
			b.Fatalf("after KeepLRU: Stats = %+v", st)
		}
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o600)
}
