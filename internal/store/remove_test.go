package store

import (
	"fmt"
	"testing"
	"time"
)

// TestKeepLRUManyRemovalsInInodeOrder: a gc's removal of at least
// inodeOrderMin files (here lowered), unlinked in inode order by several
// workers, removes every file no record holds and keeps the rest.
func TestKeepLRUManyRemovalsInInodeOrder(t *testing.T) {
	defer func(n int) { inodeOrderMin = n }(inodeOrderMin)
	inodeOrderMin = removeBatch
	clk := newClock()
	s := openT(t, t.TempDir(), Options{Now: clk.Now})
	defer s.Close()
	n := 3*removeBatch + 10
	for i := range n {
		putT(t, s, fmt.Sprintf("a%04d", i), "1", map[string]string{"own": fmt.Sprint(i), "shared": "shared"})
		clk.Advance(time.Second)
	}
	if _, err := s.KeepLRU(10); err != nil {
		t.Fatal(err)
	}
	settle(s)
	checkConsistent(t, s)
	if got := len(blobFiles(t, s)); got != 11 {
		t.Fatalf("%d files left, want the 10 kept avatars' and the shared one", got)
	}
}
