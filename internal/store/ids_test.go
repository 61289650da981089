package store

import (
	"slices"
	"testing"
)

// TestIDs: the cached avatars' IDs, sorted, without copying the avatars.
func TestIDs(t *testing.T) {
	s := openT(t, t.TempDir(), Options{})
	defer s.Close()
	if ids := s.IDs(); len(ids) != 0 {
		t.Fatalf("empty store: %v", ids)
	}
	putT(t, s, "b", "1", map[string]string{"x": "ex"})
	putT(t, s, "a", "1", map[string]string{"y": "why"})
	if ids := s.IDs(); !slices.Equal(ids, []string{"a", "b"}) {
		t.Fatalf("IDs = %v", ids)
	}
	if err := s.Delete("b"); err != nil {
		t.Fatal(err)
	}
	if ids := s.IDs(); !slices.Equal(ids, []string{"a"}) {
		t.Fatalf("after a delete: %v", ids)
	}
}
