package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/assetd/assetd/internal/manifest"
)

// benchStore is a store built once per test binary for the Open
// benchmarks, removed by TestMain.
type benchStore struct {
	once sync.Once
	dir  string
	err  error
}

var bench10k, bench100k benchStore

// get builds the store on first use: n avatars with own blobs of their own each.
func (bs *benchStore) get(b *testing.B, n, own int) string {
	bs.once.Do(func() {
		bs.dir, bs.err = os.MkdirTemp("", "assetd-store-bench-")
		if bs.err == nil {
			bs.err = buildStore(bs.dir, n, own)
		}
	})
	if bs.err != nil {
		b.Fatal(bs.err)
	}
	return bs.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, bs := range []*benchStore{&bench10k, &bench100k} {
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
// transaction), as n Puts would leave it: each avatar has a blob shared by
// all and own small blobs of its own.
func buildStore(dir string, n, own int) error {
	s, err := Open(dir, Options{})
	if err != nil {
		return err
	}
	write := func(data []byte) (manifest.Asset, error) {
		d := digestOf(data)
		err := os.WriteFile(s.BlobPath(d), data, 0o444)
		return manifest.Asset{Size: int64(len(data)), SHA256: d}, err
	}
	common, err := write([]byte("shared by every avatar"))
	if err != nil {
		return err
	}
	common.Path = "common.bin"
	blobs := map[string]blobRec{common.SHA256: {size: common.Size, refs: int64(n), committed: 1}}
	records := make(map[string][]byte, n)
	for i := range n {
		id := fmt.Sprintf("avatar-%05d", i)
		m := &manifest.Manifest{Schema: 1, AvatarID: id, Version: "v1", Assets: []manifest.Asset{common}}
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
		if records[id], err = encodeAvatar(&a); err != nil {
			return err
		}
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		av, used, bl := tx.Bucket(bucketAvatars), tx.Bucket(bucketLastUsed), tx.Bucket(bucketBlobs)
		for id, v := range records {
			at := make([]byte, 8)
			binary.BigEndian.PutUint64(at, uint64(len(id)))
			if err := av.Put([]byte(id), v); err != nil {
				return err
			}
			if err := used.Put([]byte(id), at); err != nil {
				return err
			}
		}
		for d, r := range blobs {
			if err := bl.Put([]byte(d), r.encode()); err != nil {
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

func BenchmarkOpen10k(b *testing.B) { benchOpen(b, bench10k.get(b, 10000, 2), 10000, 20001) }

// BenchmarkOpen100k opens a store of 100,000 avatars and 300,001 blobs
// (issue 15: ≤ 1 s to a ready daemon) and reports the heap the open
// store holds per avatar.
func BenchmarkOpen100k(b *testing.B) { benchOpen(b, bench100k.get(b, 100000, 3), 100000, 300001) }

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
