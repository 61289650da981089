package store

import (
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestKeepLRUDropMostAsAChange: a gc dropping most avatars (dropMost:
// a walk of each bucket beside the sorted IDs) leaves the index, memory,
// counters and files exactly as the same drops made as a change (a
// dropAvatar each, then apply) do, on two stores built alike: avatars
// sharing pool blobs with kept ones (their references go down, the
// records stay), manifests naming a digest twice (one reference), a
// pinned avatar among the oldest (kept), a leased blob of a dropped
// avatar (kept, unused), an orphan committed before (untouched), and
// dropped avatars in the hot cache.
func TestKeepLRUDropMostAsAChange(t *testing.T) {
	const n, keep = 2*removeBatch + 40, 10
	build := func(dir string) (*Store, *Lease) {
		clk := newClock()
		s := openT(t, dir, Options{Now: clk.Now})
		for i := range n {
			files := map[string]string{"own": fmt.Sprint("own ", i), "pool": fmt.Sprint("pool ", i%7)}
			if i%5 == 0 {
				files["copy"] = files["own"]
			}
			a := avatarT(t, s, fmt.Sprintf("a%04d", i), "1", files)
			a.RawManifest = fmt.Appendf(nil, `{"raw":%d}`, i)
			a.LastUsed = clk.Now()
			a.Pinned = i == 3
			if err := s.Put(a); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Second)
		}
		commitT(t, s, []byte("an orphan"))
		for _, id := range []string{"a0001", "a0002", "a0500"} {
			if _, ok := s.Get(id); !ok {
				t.Fatalf("%s not found", id)
			}
		}
		return s, s.Lease(digestOf([]byte("own 5")))
	}
	a, la := build(t.TempDir())
	defer a.Close()
	defer la.Release()
	b, lb := build(t.TempDir())
	defer b.Close()
	defer lb.Release()

	removed, err := a.KeepLRU(keep)
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != n-keep || !mostOf(len(removed), n) || !slices.IsSorted(removed) || slices.Contains(removed, "a0003") {
		t.Fatalf("KeepLRU removed %d (sorted %v, the pinned a0003 among them %v): not dropMost's case",
			len(removed), slices.IsSorted(removed), slices.Contains(removed, "a0003"))
	}
	b.wmu.Lock()
	c := b.newChange()
	c.later = true
	for _, id := range removed {
		b.dropAvatar(c, id)
	}
	err = b.apply(c)
	b.wmu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	settle(a)
	settle(b)

	if da, db := dumpIndex(t, a), dumpIndex(t, b); !maps.EqualFunc(da, db, maps.Equal) {
		for name := range da {
			for k, v := range da[name] {
				if w, ok := db[name][k]; !ok || w != v {
					t.Errorf("bucket %s, key %q: dropMost %x, a change %x (%v)", name, k, v, w, ok)
				}
			}
			for k := range db[name] {
				if _, ok := da[name][k]; !ok {
					t.Errorf("bucket %s, key %q: dropped by dropMost only", name, k)
				}
			}
		}
		t.Fatal("the indexes differ")
	}
	if ka, kb := slices.Sorted(maps.Keys(a.avatars)), slices.Sorted(maps.Keys(b.avatars)); !slices.Equal(ka, kb) {
		t.Fatalf("avatars in memory: dropMost %v, a change %v", ka, kb)
	}
	if ha, hb := slices.Sorted(maps.Keys(a.hot)), slices.Sorted(maps.Keys(b.hot)); !slices.Equal(ha, hb) {
		t.Fatalf("hot avatars: dropMost %v, a change %v", ha, hb)
	}
	if a.counts != b.counts || a.uncommits.Load() != b.uncommits.Load() {
		t.Fatalf("counts: dropMost %+v (uncommits %d), a change %+v (%d)", a.counts, a.uncommits.Load(), b.counts, b.uncommits.Load())
	}
	if fa, fb := blobFiles(t, a), blobFiles(t, b); !slices.Equal(fa, fb) {
		t.Fatalf("files: dropMost %d, a change %d", len(fa), len(fb))
	}
	// What the change kept, as a sanity check of the reference: the kept
	// avatars' blobs, 7 pool blobs, the leased one and the orphans.
	if st := a.Stats(); st.Entries != keep || st.Pinned != 1 || st.Blobs != keep+7+1+1 {
		t.Fatalf("Stats = %+v", st)
	}
	if l := a.Leftovers(); l.Unused != 2 {
		t.Fatalf("Leftovers = %+v, want the orphan and the leased blob", l)
	}
	checkConsistent(t, a)
}

// dumpIndex is every key and value of s's index, by bucket.
func dumpIndex(t *testing.T, s *Store) map[string]map[string]string {
	t.Helper()
	out := map[string]map[string]string{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			m := map[string]string{}
			out[string(name)] = m
			return b.ForEach(func(k, v []byte) error {
				m[string(k)] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
