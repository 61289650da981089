package store

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSortDigests: sortDigests orders as a comparison sort does, below
// and above radixMin, with duplicates, digests sharing their first two
// bytes (one run) and runs of one.
func TestSortDigests(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 100, radixMin - 1, radixMin, 3 * radixMin} {
		ds := make([][32]byte, n)
		for i := range ds {
			for j := range ds[i] {
				ds[i][j] = byte(rng.Uint32())
			}
			switch i % 5 {
			case 1:
				ds[i] = ds[i-1] // a duplicate
			case 2:
				ds[i][0], ds[i][1] = 0xab, 0xcd // the same run
			case 3:
				ds[i] = [32]byte{0xff, 0xff, byte(i)} // the last run
			}
		}
		want := slices.Clone(ds)
		slices.SortFunc(want, compareDigests)
		sortDigests(ds)
		if !slices.Equal(ds, want) {
			t.Fatalf("%d digests: not in order", n)
		}
	}
}
