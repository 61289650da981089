package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	bolt "go.etcd.io/bbolt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/assetd/assetd/internal/manifest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func digestOf(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

func openT(t testing.TB, dir string, opts Options) *Store {
	t.Helper()
	if opts.FreeSpace == nil {
		opts.FreeSpace = func(string) (int64, error) { return 1 << 40, nil }
	}
	s, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	<-s.checking.done // the size check Open leaves running (most tests judge its result)
	return s
}

// commitT ingests and commits data, returning its digest.
func commitT(t testing.TB, s *Store, data []byte) string {
	t.Helper()
	d := digestOf(data)
	w, err := s.Ingest(context.Background(), d, int64(len(data)))
	if err != nil {
		t.Fatalf("Ingest: %v", err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return d
}

// avatarT builds an avatar whose assets are files (path → content), and
// commits their blobs.
func avatarT(t testing.TB, s *Store, id, version string, files map[string]string) *Avatar {
	t.Helper()
	m := &manifest.Manifest{Schema: 1, AvatarID: id, Version: version}
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		data := []byte(files[p])
		d := commitT(t, s, data)
		m.Assets = append(m.Assets, manifest.Asset{Path: p, Size: int64(len(data)), SHA256: d})
	}
	return &Avatar{ID: id, Manifest: m, Source: "origin"}
}

func putT(t testing.TB, s *Store, id, version string, files map[string]string) *Avatar {
	t.Helper()
	a := avatarT(t, s, id, version, files)
	if err := s.Put(a); err != nil {
		t.Fatalf("Put %s: %v", id, err)
	}
	return a
}

func blobFiles(t testing.TB, s *Store) []string {
	t.Helper()
	names, err := os.ReadDir(filepath.Join(s.Dir(), "blobs", "sha256"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		out = append(out, n.Name())
	}
	return out
}

// checkConsistent asserts the store's invariants: memory equals the index
// on disk, refcounts equal the avatars' references, committed blobs are on
// disk with their size and are 0444 or 0440, and blobs/ holds nothing else.
func checkConsistent(t testing.TB, s *Store) {
	t.Helper()
	if err := consistency(s); err != nil {
		t.Fatal(err)
	}
}

func consistency(s *Store) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	fresh := &Store{db: s.db, avatars: map[string]*entry{}, hot: map[string]*Avatar{}}
	rawRefs, err := fresh.load()
	if err != nil {
		return err
	}
	if len(fresh.avatars) != len(s.avatars) {
		return fmt.Errorf("index has %d avatars, memory %d", len(fresh.avatars), len(s.avatars))
	}
	refs := map[string]int64{}
	for _, d := range rawRefs {
		refs[hex.EncodeToString(d[:])]++
	}
	for id, e := range s.avatars {
		f := fresh.avatars[id]
		if f == nil || f.state != e.state || f.pinned != e.pinned {
			return fmt.Errorf("avatar %s differs between index and memory", id)
		}
		s.mu.RLock()
		h := s.hot[id]
		s.mu.RUnlock()
		if h != nil {
			a, err := s.readRecord(id)
			if err != nil {
				return err
			}
			if a.Version != h.Version || a.State != h.State || a.Pinned != h.Pinned || a.ETag != h.ETag ||
				!slices.Equal(a.Damaged, h.Damaged) || a.Manifest.Version != h.Manifest.Version {
				return fmt.Errorf("avatar %s: hot %+v, index %+v", id, h, a)
			}
		}
	}
	records := map[string]blobRec{}
	var counts blobCounts
	err = s.db.View(func(tx *bolt.Tx) error {
		return eachBlob(tx, func(d string, r blobRec) error {
			records[d] = r
			counts.add(r, +1)
			return nil
		})
	})
	if err != nil {
		return err
	}
	s.mu.RLock()
	mem := s.counts
	s.mu.RUnlock()
	if counts != mem {
		return fmt.Errorf("index counts %+v, memory %+v", counts, mem)
	}
	for d, r := range records {
		if r.refs != refs[d] {
			return fmt.Errorf("blob %s: %d refs, %d avatars use it", d, r.refs, refs[d])
		}
		if r.isCommitted() {
			fi, err := os.Stat(s.BlobPath(d))
			if err != nil || fi.Size() != r.size || (fi.Mode().Perm() != ModeShared && fi.Mode().Perm() != ModePrivate) {
				return fmt.Errorf("committed blob %s: %v %v", d, fi, err)
			}
		}
	}
	for d, n := range refs {
		if records[d].refs != n {
			return fmt.Errorf("blob %s used by %d avatars has no record", d, n)
		}
	}
	ents, err := os.ReadDir(s.path("blobs", "sha256"))
	if err != nil {
		return err
	}
	for _, ent := range ents {
		if !records[ent.Name()].isCommitted() {
			return fmt.Errorf("file %s in blobs/ is not committed", ent.Name())
		}
	}
	return nil
}
