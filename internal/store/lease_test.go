package store

import (
	"slices"
	"strings"
	"testing"
)

// TestLeaseKeepsBlobsThroughEviction: making room for a version never
// drops, nor counts as freed, a blob the version needs. Quota 120 KiB,
// A={X 50K}, C={Z 50K}; B={X, Y 60K} needs 60K more: evicting A would free
// nothing (X is leased), so only C goes, and B's Put finds X committed.
func TestLeaseKeepsBlobsThroughEviction(t *testing.T) {
	s := openT(t, t.TempDir(), Options{MaxBytes: 120 << 10})
	defer s.Close()
	x, y, z := strings.Repeat("x", 50<<10), strings.Repeat("y", 60<<10), strings.Repeat("z", 50<<10)
	putT(t, s, "a", "1", map[string]string{"x": x})
	putT(t, s, "c", "1", map[string]string{"z": z})
	dx, dy := digestOf([]byte(x)), digestOf([]byte(y))

	lease := s.Lease(dx, dy)
	defer lease.Release()
	evicted, err := s.EnsureSpaceKeeping(60<<10, "b")
	if err != nil || !slices.Equal(evicted, []string{"c"}) {
		t.Fatalf("EnsureSpaceKeeping = %v, %v; want only c evicted", evicted, err)
	}
	if !s.HasBlob(dx) {
		t.Fatal("X, leased, was collected")
	}
	b := avatarT(t, s, "b", "1", map[string]string{"x": x, "y": y})
	if err := s.Put(b); err != nil {
		t.Fatalf("Put(b): %v", err)
	}
	if _, ok := s.Get("a"); !ok {
		t.Error("a evicted")
	}
	checkConsistent(t, s)
}

// TestLeasedOrphanSurvives: an unreferenced blob held by a lease outlives
// the orphan grace (a load running over an hour) and a Delete that drops
// its last reference; released, it is collected as any orphan.
func TestLeasedOrphanSurvives(t *testing.T) {
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now, MaxBytes: 1 << 20})
	defer s.Close()
	orphan := commitT(t, s, []byte("committed by a long load"))
	putT(t, s, "a", "1", map[string]string{"shared": "shared with the load", "own": strings.Repeat("a", 512<<10)})
	shared := digestOf([]byte("shared with the load"))
	lease := s.Lease(orphan, shared)
	clk.Advance(2 * orphanGrace)
	if err := s.Delete("a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.EnsureSpace(900 << 10); err != nil {
		t.Fatal(err)
	}
	if !s.HasBlob(orphan) || !s.HasBlob(shared) {
		t.Fatal("a leased blob was collected")
	}
	if err := s.DeleteAll(); err != nil {
		t.Fatal(err)
	}
	if !s.HasBlob(orphan) {
		t.Fatal("DeleteAll collected a leased blob")
	}
	lease.Release()
	lease.Release()
	if _, err := s.EnsureSpace(1 << 20); err != nil {
		t.Fatal(err)
	}
	if s.HasBlob(orphan) || s.HasBlob(shared) {
		t.Error("released orphans kept")
	}
	checkConsistent(t, s)
}
