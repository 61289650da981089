package store

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestPutPersistsEveryField(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	s := openT(t, dir, Options{Now: clk.Now})
	a := sampleAvatar()
	a.State = StateReady
	a.Damaged = nil
	a.RawManifest = []byte(`{"schema":1,"avatarId":"alice","signed":"bytes as sent"}`)
	a.LastUsed = clk.Now().Add(-time.Hour)
	for i, data := range []string{"b", ""} {
		d := commitT(t, s, []byte(data))
		a.Manifest.Assets[i].SHA256, a.Manifest.Assets[i].Size = d, int64(len(data))
	}
	if err := s.Put(a); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openT(t, dir, Options{Now: clk.Now})
	defer s.Close()
	got, ok := s.Get("alice")
	if !ok {
		t.Fatal("lost")
	}
	raw, err := s.RawManifest("alice")
	if err != nil || string(raw) != string(a.RawManifest) {
		t.Fatalf("RawManifest = %q, %v; want %q", raw, err, a.RawManifest)
	}
	want := *a
	want.RawManifest = nil // read with RawManifest, not held in memory
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Fatalf("after reopen (-want +got):\n%s", diff)
	}
	got.Damaged = append(got.Damaged, "mutated")
	if again, _ := s.Get("alice"); again.Damaged != nil {
		t.Fatal("Get returned shared state")
	}
	// Put never unpins.
	b := *a
	b.Pinned = false
	if err := s.Put(&b); err != nil {
		t.Fatal(err)
	}
	got, _ = s.Get("alice")
	if !got.Pinned {
		t.Fatal("Put unpinned")
	}
	if diff := cmp.Diff([]*Avatar{got}, s.List(), cmpopts.EquateEmpty()); diff != "" {
		t.Fatal(diff)
	}
}

// TestConcurrentUse runs readers and writers at once, for the race
// detector, and checks the invariants after.
func TestConcurrentUse(t *testing.T) {
	s := openT(t, t.TempDir(), Options{MaxBytes: 4000})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for ctx.Err() == nil {
				runtime.Gosched()
				for _, a := range s.List() {
					s.Touch(a.ID)
					s.Get(a.ID)
					s.CheckAvatar(a.ID)
				}
				s.Stats()
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 3 {
		writers.Go(func() {
			for i := range 8 {
				id := fmt.Sprintf("w%d-%d", w, i%6)
				files := map[string]string{"shared": "shared by all", "own": fmt.Sprintf("%s v%d", id, i)}
				a := avatarT(t, s, id, fmt.Sprint(i), files)
				if _, err := s.EnsureSpaceKeeping(a.Size(), id); err != nil {
					t.Error(err)
				}
				if err := s.Put(a); err != nil {
					// Another writer's eviction may have collected a blob of a
					// between its commit and this Put; the manager retries.
					t.Logf("Put: %v", err)
				}
				if i%4 == 3 {
					s.Flush()
					s.KeepLRU(4)
				}
			}
		})
	}
	writers.Wait()
	cancel()
	readers.Wait()
	checkConsistent(t, s)
}
