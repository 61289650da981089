// Package dirent reads a directory's entries as the kernel gives them
// (getdents64: a name and an inode number each, no stat per file) and
// orders names of files by their inode numbers, the order in which a
// file system such as ext4 removes many files of one directory fastest.
package dirent

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ErrStopped is Read stopped by its stop channel.
var ErrStopped = errors.New("dirent: stopped")

// Where struct linux_dirent64's fields are.
var (
	inoAt    = unsafe.Offsetof(unix.Dirent{}.Ino)
	reclenAt = unsafe.Offsetof(unix.Dirent{}.Reclen)
	nameAt   = int(unsafe.Offsetof(unix.Dirent{}.Name))
)

// Read calls f with the name and inode number of each entry of the
// directory dirFD ("." and ".." included), read through a descriptor of
// its own from the start. name is valid only during the call. A closed
// stop ends it with ErrStopped.
func Read(dirFD int, stop <-chan struct{}, f func(name []byte, ino uint64)) error {
	fd, err := unix.Openat(dirFD, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	buf := make([]byte, 64<<10)
	for {
		select {
		case <-stop:
			return ErrStopped
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
			reclen := int(binary.NativeEndian.Uint16(b[reclenAt:]))
			if reclen <= nameAt || reclen > len(b) {
				return errors.New("dirent: malformed directory entry")
			}
			name := b[nameAt:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			f(name, binary.NativeEndian.Uint64(b[inoAt:]))
			b = b[reclen:]
		}
	}
}

// InodeOrder returns names, of files in the directory dirFD, in the
// order of the files' inode numbers, read once from the directory's
// entries; names with no entry come first. On ext4 a removal in this
// order touches each inode table and bitmap block once, not once per file
// as an order unrelated to where the inodes are does (GNU rm sorts a large
// directory's entries the same way). names is left as it is; on any
// failure, or when stop is closed, InodeOrder returns names itself: the
// order is only an optimisation.
func InodeOrder(dirFD int, names []string, stop <-chan struct{}) []string {
	at := make(map[string]int32, len(names))
	for i, name := range names {
		at[name] = int32(i)
	}
	inos := make([]uint64, len(names))
	if err := Read(dirFD, stop, func(name []byte, ino uint64) {
		if i, ok := at[string(name)]; ok {
			inos[i] = ino
		}
	}); err != nil {
		return names
	}
	order := make([]int32, len(names))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return cmp.Compare(inos[a], inos[b]) })
	sorted := make([]string, len(names))
	for i, j := range order {
		sorted[i] = names[j]
	}
	return sorted
}
