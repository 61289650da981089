package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestInodeOrder: inodeOrder returns the digests it was given, those
// with no file first, then by their files' inode numbers, whatever else
// the directory holds; stopped, it returns them as given.
func TestInodeOrder(t *testing.T) {
	dir := t.TempDir()
	var ds []string
	for i := range 300 {
		ds = append(ds, digestOf(fmt.Appendf(nil, "blob %d", i)))
	}
	// Created in an order of their own, so that neither the order of ds
	// nor that of the names is the order of the inodes.
	created := slices.Clone(ds)
	rand.Shuffle(len(created), func(i, j int) { created[i], created[j] = created[j], created[i] })
	for _, d := range created {
		if err := os.WriteFile(filepath.Join(dir, d), []byte(d), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "not-a-digest"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, digestOf([]byte("a directory"))), 0o755); err != nil {
		t.Fatal(err)
	}
	missing := []string{digestOf([]byte("no file 1")), digestOf([]byte("no file 2"))}
	ds = append(ds, missing...)
	rand.Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	given := slices.Clone(ds)
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	got := inodeOrder(fd, ds, nil)
	if !slices.Equal(ds, given) {
		t.Fatal("inodeOrder reordered the caller's slice")
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(ds))) {
		t.Fatalf("inodeOrder returned %d digests, not the %d given", len(got), len(ds))
	}
	if !slices.Equal(slices.Sorted(slices.Values(got[:2])), slices.Sorted(slices.Values(missing))) {
		t.Fatalf("the digests with no file are not first: %v", got[:2])
	}
	var last uint64
	for i, d := range got[2:] {
		st, err := os.Stat(filepath.Join(dir, d))
		if err != nil {
			t.Fatal(err)
		}
		ino := st.Sys().(*syscall.Stat_t).Ino
		if ino < last {
			t.Fatalf("digest %d of the order has inode %d, after inode %d", i+2, ino, last)
		}
		last = ino
	}

	stop := make(chan struct{})
	close(stop)
	if got := inodeOrder(fd, ds, stop); !slices.Equal(got, given) {
		t.Fatal("stopped, inodeOrder did not return the digests as given")
	}
}

// TestKeepLRUManyRemovalsInInodeOrder: a gc's removal of at least
// inodeOrderMin files (here lowered) removes every file no record holds
// and keeps the rest.
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
