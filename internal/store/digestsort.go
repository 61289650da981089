package store

import "slices"

// sortDigests sorts ds as compareDigests orders them. Many digests (a gc's
// 400,000 references, Open's) are first spread by their first two bytes
// into 65,536 runs, each then sorted alone: they are hashes, so a run
// holds a few. A comparison sort of 400,000 [32]byte took ~55 ms, most
// of a gc's index change.
func sortDigests(ds [][32]byte) {
	if len(ds) < radixMin {
		slices.SortFunc(ds, compareDigests)
		return
	}
	at := make([]int, 1<<16+1) // at[p]: where the run of prefix p starts
	for i := range ds {
		at[int(ds[i][0])<<8|int(ds[i][1])+1]++
	}
	for p := 1; p < len(at); p++ {
		at[p] += at[p-1]
	}
	out := make([][32]byte, len(ds))
	next := slices.Clone(at[:1<<16])
	for i := range ds {
		p := int(ds[i][0])<<8 | int(ds[i][1])
		out[next[p]] = ds[i]
		next[p]++
	}
	for p := range 1 << 16 {
		if run := out[at[p]:at[p+1]]; len(run) > 1 {
			slices.SortFunc(run, compareDigests)
		}
	}
	copy(ds, out)
}

// radixMin is the fewest digests sortDigests spreads into runs: below it
// the runs' table costs more than it saves.
const radixMin = 1 << 14
