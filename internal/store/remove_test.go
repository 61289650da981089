package store

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// TestKeepLRUManyRemovalsInInodeOrder: a gc's removal of at least
// inodeOrderMin files (here lowered), unlinked in inode order by several
// workers, removes every file no record holds and keeps the rest, and is
// announced to OnRemoval before and after; a smaller one is not.
func TestKeepLRUManyRemovalsInInodeOrder(t *testing.T) {
	defer func(n int) { inodeOrderMin = n }(inodeOrderMin)
	inodeOrderMin = 2*removeBatch - 100 // the second gc's 502 files, not the first's 266
	clk := newClock()
	var mu sync.Mutex
	var calls []bool
	s := openT(t, t.TempDir(), Options{Now: clk.Now, OnRemoval: func(removing bool) {
		mu.Lock()
		calls = append(calls, removing)
		mu.Unlock()
	}})
	defer s.Close()
	announced := func() []bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(calls)
	}
	n := 3*removeBatch + 10
	for i := range n {
		putT(t, s, fmt.Sprintf("a%04d", i), "1", map[string]string{"own": fmt.Sprint(i), "shared": "shared"})
		clk.Advance(time.Second)
	}
	if _, err := s.KeepLRU(n - removeBatch - 10); err != nil { // fewer than inodeOrderMin files
		t.Fatal(err)
	}
	settle(s)
	if got := announced(); len(got) != 0 {
		t.Fatalf("a removal of %d files was announced: %v", removeBatch+10, got)
	}
	if _, err := s.KeepLRU(10); err != nil {
		t.Fatal(err)
	}
	settle(s)
	checkConsistent(t, s)
	if got := len(blobFiles(t, s)); got != 11 {
		t.Fatalf("%d files left, want the 10 kept avatars' and the shared one", got)
	}
	if got := announced(); !slices.Equal(got, []bool{true, false}) {
		t.Fatalf("OnRemoval calls %v, want [true false]", got)
	}
}
