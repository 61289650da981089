package dirent

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func openDir(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// TestRead: every entry, with the inode number stat gives it, names of
// any length among them, over several getdents calls, from the start
// even when the caller's descriptor has been read.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	want := map[string]uint64{}
	for i := range 2000 { // more than one 64 KiB read
		name := fmt.Sprintf("file-%04d", i)
		if i%100 == 0 {
			name = strings.Repeat("x", 250) + fmt.Sprintf("%04d", i)
		}
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		want[name] = inode(t, filepath.Join(dir, name))
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	want["sub"] = inode(t, filepath.Join(dir, "sub"))
	want["."] = inode(t, dir)
	fd := openDir(t, dir)
	if _, err := unix.Getdents(fd, make([]byte, 4096)); err != nil { // the caller's offset moves
		t.Fatal(err)
	}
	got := map[string]uint64{}
	if err := Read(fd, nil, func(name []byte, ino uint64) { got[string(name)] = ino }); err != nil {
		t.Fatal(err)
	}
	delete(got, "..")
	if len(got) != len(want) {
		t.Fatalf("Read gave %d entries, want %d", len(got), len(want))
	}
	for name, ino := range want {
		if got[name] != ino {
			t.Fatalf("%s: inode %d, want %d", name, got[name], ino)
		}
	}
	stop := make(chan struct{})
	close(stop)
	if err := Read(fd, stop, func([]byte, uint64) { t.Fatal("called after stop") }); err != ErrStopped {
		t.Fatalf("stopped: %v, want ErrStopped", err)
	}
}

// TestInodeOrder: InodeOrder returns the names it was given, those with
// no file first, then by their files' inode numbers, whatever else the
// directory holds; stopped, it returns them as given.
func TestInodeOrder(t *testing.T) {
	dir := t.TempDir()
	var names []string
	for i := range 300 {
		names = append(names, fmt.Sprintf("blob-%03d", i))
	}
	// Created in an order of their own, so that neither the order of
	// names nor their sorted order is the order of the inodes.
	created := slices.Clone(names)
	rand.Shuffle(len(created), func(i, j int) { created[i], created[j] = created[j], created[i] })
	for _, name := range created {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, other := range []string{"other-file", "other-dir"} {
		if err := os.Mkdir(filepath.Join(dir, other), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	missing := []string{"no-file-1", "no-file-2"}
	names = append(names, missing...)
	rand.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	given := slices.Clone(names)
	fd := openDir(t, dir)

	got := InodeOrder(fd, names, nil)
	if !slices.Equal(names, given) {
		t.Fatal("InodeOrder reordered the caller's slice")
	}
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(names))) {
		t.Fatalf("InodeOrder returned %d names, not the %d given", len(got), len(names))
	}
	if !slices.Equal(slices.Sorted(slices.Values(got[:2])), missing) {
		t.Fatalf("the names with no file are not first: %v", got[:2])
	}
	var last uint64
	for i, name := range got[2:] {
		ino := inode(t, filepath.Join(dir, name))
		if ino < last {
			t.Fatalf("name %d of the order has inode %d, after inode %d", i+2, ino, last)
		}
		last = ino
	}

	stop := make(chan struct{})
	close(stop)
	if got := InodeOrder(fd, names, stop); !slices.Equal(got, given) {
		t.Fatal("stopped, InodeOrder did not return the names as given")
	}
	if got := InodeOrder(-1, names, nil); !slices.Equal(got, given) {
		t.Fatal("the directory unreadable, InodeOrder did not return the names as given")
	}
	if err := Read(-1, nil, func([]byte, uint64) {}); err == nil {
		t.Fatal("Read of no directory gave no error")
	}
}
