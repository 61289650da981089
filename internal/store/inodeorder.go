package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inodeOrderMin is the number of files from which a removal unlinks them
// in the order of their inode numbers (inodeOrder); GNU rm (gnulib's fts)
// sorts a large directory's entries by inode number for the same reason.
// A variable for tests.
var inodeOrderMin = 10000

// inodeOrder returns ds, digests of files in the directory dirFD, in the
// order of the files' inode numbers, read from the directory's entries
// (getdents: no stat per file); digests with no file come first. On
// ext4 a removal in this order touches each inode table and bitmap block
// once, not once per file in digest order, which is random with respect
// to where the files' inodes are: measured on a journaled ext4 (issue
// 15), 297,000 unlinks take 4.2 s instead of 8.4 s. It reads the
// directory once, whatever its size; on any failure, or when stop is
// closed, it returns ds as it was: the order is only an optimisation.
func inodeOrder(dirFD int, ds []string, stop <-chan struct{}) []string {
	at := make(map[[32]byte]int32, len(ds))
	for i, d := range ds {
		if r, ok := rawDigest(d); ok {
			at[r] = int32(i)
		}
	}
	inos := make([]uint64, len(ds))
	if err := readInodes(dirFD, stop, func(name []byte, ino uint64) {
		if r, ok := rawDigest(name); ok {
			if i, ok := at[r]; ok {
				inos[i] = ino
			}
		}
	}); err != nil {
		return ds
	}
	order := make([]int32, len(ds))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(inos[a], inos[b]) })
	sorted := make([]string, len(ds))
	for i, j := range order {
		sorted[i] = ds[j]
	}
	return sorted
}

// errStopped is readInodes stopped by its stop channel.
var errStopped = errors.New("stopped")

// direntName is where a struct linux_dirent64's name starts.
const direntName = int(unsafe.Offsetof(unix.Dirent{}.Name))

// readInodes calls f with the name and inode number of each entry of the
// directory dirFD (read through a descriptor of its own, from the start).
func readInodes(dirFD int, stop <-chan struct{}, f func(name []byte, ino uint64)) error {
	fd, err := unix.Openat(dirFD, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-stop:
			return errStopped
		default:
		}
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		for b := buf[:n]; len(b) > 0; {
			reclen := int(binary.NativeEndian.Uint16(b[unsafe.Offsetof(unix.Dirent{}.Reclen):]))
			if reclen <= direntName || reclen > len(b) {
				return errors.New("store: malformed directory entry")
			}
			name := b[direntName:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			f(name, binary.NativeEndian.Uint64(b[unsafe.Offsetof(unix.Dirent{}.Ino):]))
			b = b[reclen:]
		}
	}
}
