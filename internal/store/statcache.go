package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// statCache lets CheckAvatar skip the fstatat of a blob that an earlier
// check found whole and that nothing has changed since. It is one
// non-blocking inotify instance watching blobs/sha256, owned by the
// Store, drained at every check: the kernel queues an event inside the
// syscall that creates, writes, truncates, chmods, renames or removes a
// file of that directory, before the syscall returns, so a drain that
// finds no event for a digest proves that its file is as the last stat
// saw it. A stat recorded as trusted is dropped by any event naming its
// digest; a queue overflow (IN_Q_OVERFLOW) drops every one; a read error,
// the directory's own removal or move, or its file system's unmount turn
// the cache off (a stat every time, as without it). The daemon's own
// commits and removals reach it the same way: they are renames and
// unlinks in that directory. The instance is opened at the first check
// (inotify instances are counted per user: a store no GET reads holds
// none); between checks the kernel queues at most
// fs.inotify.max_queued_events (16384 by default), then one overflow.
//
// What a directory watch does not see, and what is done about it:
//   - A write, truncate or chmod through a hard link in another
//     directory: a file with more than one link is never trusted, and a
//     trust lasts trustFor at most, which bounds a link made after the
//     stat to that long.
//   - A write through a writable mmap queues no event; it cannot change
//     the size either, which is all a stat checks (only VerifyBlob's hash
//     finds such a change, with or without this cache).
//   - A file system another machine or a user-space server can change
//     (NFS, SMB, FUSE, ...) delivers no events for those changes, nor
//     does overlayfs for a change made in its layers below: the cache is
//     on only for the local file systems of localFS (statfs's magic), and
//     a stat is made every time on any other.
type statCache struct {
	mu      sync.Mutex
	started bool   // the first check (or Close) has opened it
	fd      int    // the inotify instance (non-blocking); -1: off
	epoch   uint64 // counts drains that found events
	trusted map[string]trustedStat
	buf     []byte
	off     string // why the cache is off ("" when on)

	stats atomic.Int64 // fstatat calls of checks (tests)
}

// trustedStat is a stat that found a blob whole: a regular file of size
// bytes with one link, made at at (unix ns of Store.now).
type trustedStat struct{ size, at int64 }

// The cache's bounds.
const (
	// trustFor bounds how long a stat is trusted without another,
	// whatever the events: the window of what a directory watch misses.
	trustFor = time.Second
	// maxTrusted bounds the stats held (~60 B each); past it they all go
	// and the working set is stat'd again.
	maxTrusted = 16384
	// watchMask is what changes a blob file or its name.
	watchMask = unix.IN_MODIFY | unix.IN_ATTRIB | unix.IN_CREATE | unix.IN_DELETE |
		unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF | unix.IN_MOVE_SELF | unix.IN_ONLYDIR
)

// localFS reports whether a file system of statfs type magic delivers
// inotify events for every change of its files: local ones. A variable:
// a seam for tests.
var localFS = func(magic int64) bool {
	switch uint32(magic) {
	case unix.EXT4_SUPER_MAGIC, unix.XFS_SUPER_MAGIC, unix.BTRFS_SUPER_MAGIC, unix.TMPFS_MAGIC,
		unix.F2FS_SUPER_MAGIC, 0x2fc12fc1 /* zfs */, 0xca451a4e, /* bcachefs */
		unix.RAMFS_MAGIC, 0x3153464a /* jfs */, unix.REISERFS_SUPER_MAGIC, unix.NILFS_SUPER_MAGIC:
		return true
	}
	return false
}

// startStatCacheLocked starts watching s's blob directory at the first check: a
// store no GET reads (a command's, a tool's) holds no inotify instance.
func (s *Store) startStatCacheLocked() {
	c := &s.statc
	if c.started {
		return
	}
	c.started = true
	c.open(s.path("blobs", "sha256"), s.blobFD)
	if c.off != "" {
		s.log.Info("store: every check stats each blob", "why", c.off)
	}
}

// open starts watching dir (blobs/sha256, open as fd); on any failure
// the cache stays off and every check stats.
func (c *statCache) open(dir string, fd int) {
	c.fd = -1
	var fs unix.Statfs_t
	if err := unix.Fstatfs(fd, &fs); err != nil {
		c.off = fmt.Sprintf("statfs: %v", err)
		return
	}
	if !localFS(int64(fs.Type)) {
		c.off = fmt.Sprintf("file system type %#x is not known to report every change through inotify", uint32(fs.Type))
		return
	}
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		c.off = fmt.Sprintf("inotify_init1: %v", err)
		return
	}
	if _, err := unix.InotifyAddWatch(in, dir, watchMask); err != nil {
		unix.Close(in)
		c.off = fmt.Sprintf("inotify_add_watch: %v", err)
		return
	}
	c.fd, c.trusted, c.buf = in, map[string]trustedStat{}, make([]byte, 8192)
}

// close turns the cache off for good (Store.Close).
func (c *statCache) close() {
	c.mu.Lock()
	if !c.started {
		c.started, c.fd = true, -1 // never opened: fd 0 is not the cache's
	}
	c.offLocked("closed")
	c.mu.Unlock()
}

func (c *statCache) offLocked(why string) {
	if c.fd >= 0 {
		unix.Close(c.fd)
	}
	c.fd, c.trusted, c.buf, c.off = -1, nil, nil, why
}

// drainLocked reads every queued event: each drops the trusted stat of
// the digest it names; an overflow drops them all.
func (c *statCache) drainLocked() {
	for c.fd >= 0 {
		n, err := unix.Read(c.fd, c.buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil || n < unix.SizeofInotifyEvent {
			c.offLocked(fmt.Sprintf("reading inotify events: n=%d: %v", n, err))
			return
		}
		c.epoch++
		for b := c.buf[:n]; len(b) >= unix.SizeofInotifyEvent; {
			mask := binary.NativeEndian.Uint32(b[4:8])
			end := unix.SizeofInotifyEvent + int(binary.NativeEndian.Uint32(b[12:16]))
			if end > len(b) {
				c.offLocked("a truncated inotify event")
				return
			}
			name := b[unix.SizeofInotifyEvent:end]
			if i := slices.Index(name, 0); i >= 0 {
				name = name[:i]
			}
			b = b[end:]
			switch {
			case mask&unix.IN_Q_OVERFLOW != 0:
				clear(c.trusted)
			case mask&(unix.IN_IGNORED|unix.IN_DELETE_SELF|unix.IN_MOVE_SELF|unix.IN_UNMOUNT) != 0:
				c.offLocked("the blob directory was removed, moved or unmounted")
				return
			default:
				delete(c.trusted, string(name))
			}
		}
	}
}

// statBlobs stats those of digests (sizes beside them) that skip does not
// exclude and no trusted stat vouches for, and calls bad with the index
// of each that is not a regular file of its size. The drain comes before
// any stat; a whole blob is trusted afterwards only if no drain found an
// event meanwhile (that event may have been its own).
func (s *Store) statBlobs(digests []string, sizes []int64, skip func(int) bool, bad func(int)) {
	c := &s.statc
	now := s.now().UnixNano()
	// need and whole are bit sets over digests: to stat; stat'd whole
	// with one link (to trust). An avatar of up to 64 files needs no
	// allocation.
	var needW, wholeW [1]uint64
	need, whole := needW[:], wholeW[:]
	if n := len(digests); n > 64 {
		need, whole = make([]uint64, (n+63)/64), make([]uint64, (n+63)/64)
	}
	c.mu.Lock()
	s.startStatCacheLocked()
	c.drainLocked()
	on, epoch := c.fd >= 0, c.epoch
	for i, d := range digests {
		if skip(i) {
			continue
		}
		if t, ok := c.trusted[d]; on && ok && t.size == sizes[i] && now >= t.at && now-t.at < int64(trustFor) {
			continue
		}
		need[i/64] |= 1 << (i % 64)
	}
	c.mu.Unlock()
	trust := 0
	for i, d := range digests {
		if need[i/64]&(1<<(i%64)) == 0 {
			continue
		}
		ok, single := s.statOK(d, sizes[i])
		switch {
		case !ok:
			bad(i)
		case single:
			whole[i/64] |= 1 << (i % 64)
			trust++
		}
	}
	if !on || trust == 0 {
		return
	}
	c.mu.Lock()
	if c.fd >= 0 && c.epoch == epoch {
		if len(c.trusted)+trust > maxTrusted {
			clear(c.trusted)
		}
		for i, d := range digests {
			if whole[i/64]&(1<<(i%64)) != 0 {
				c.trusted[d] = trustedStat{size: sizes[i], at: now}
			}
		}
	}
	c.mu.Unlock()
}

// statOK reports whether blobs/sha256/d is a regular file of size bytes,
// and whether it has one link.
func (s *Store) statOK(d string, size int64) (ok, single bool) {
	s.statc.stats.Add(1)
	var st unix.Stat_t
	err := unix.Fstatat(s.blobFD, d, &st, unix.AT_SYMLINK_NOFOLLOW)
	ok = err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == size
	return ok, ok && st.Nlink == 1
}
