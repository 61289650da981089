package store

import (
	"errors"
	"os"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/assetd/assetd/internal/dirent"
)

// remover is the store's background removal of blob files whose records
// went in a gc (KeepLRU, Sweep, DeleteAll: more than removeBatch files)
// and of the many strays an Open found (queued once its size check ends).
// It runs only after the index change that freed them is durable, so a
// crash leaves files no record holds, which the next Open removes; a load
// committing one of these digests again meanwhile is kept apart by the
// digest's lock and keeps its file (removeBlobFile). Close stops it and
// waits.
type remover struct {
	mu      sync.Mutex
	pending []removal     // queued, not yet taken
	done    chan struct{} // closed when the running removal returns; nil: none runs
	stop    chan struct{} // closed by Close
	closed  bool
	hook    func(d string) // tests: called before each file of the background removal
}

// removal is files to remove whose records were not committed when
// s.commitSeq was seq (removeBlobFile).
type removal struct {
	ds  []string
	seq uint64
}

// removeLater queues ds for the background remover and returns at once;
// no record of ds was committed when s.commitSeq was seq. After Close the
// files stay, as strays for the next Open.
func (s *Store) removeLater(ds []string, seq uint64) {
	r := &s.remover
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.pending = append(r.pending, removal{ds, seq})
	if r.done != nil {
		return // the running removal takes them next
	}
	if r.stop == nil {
		r.stop = make(chan struct{})
	}
	done := make(chan struct{})
	r.done = done
	go s.runRemovals(done)
}

// runRemovals removes what is queued until nothing is, or Close.
func (s *Store) runRemovals(done chan struct{}) {
	r := &s.remover
	defer close(done)
	for {
		r.mu.Lock()
		if len(r.pending) == 0 || r.closed {
			r.done = nil
			r.mu.Unlock()
			return
		}
		rm := r.pending[0]
		r.pending = r.pending[1:]
		hook := r.hook
		r.mu.Unlock()
		if hook != nil {
			for _, d := range rm.ds {
				hook(d)
			}
		}
		s.removeBlobFilesUntil(rm.ds, r.stop, rm.seq)
	}
}

// waitRemovals waits until the background removals queued so far are
// done (or stopped by Close); it reports whether there were any.
func (s *Store) waitRemovals() bool {
	r := &s.remover
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done == nil {
		return false
	}
	<-done
	return true
}

// waitSizeCheck waits until what Open left running (its size check, then
// the queueing of the strays it found for the remover) is done, or stopped
// by Close; it reports whether it was still running. The caller does not hold wmu
// (the size check applies under it).
func (s *Store) waitSizeCheck() bool {
	s.wmu.Lock()
	r := s.checking
	s.wmu.Unlock()
	if r == nil {
		return false
	}
	select {
	case <-r.done:
		return false
	default:
	}
	<-r.done
	return true
}

// stopRemovals stops the background remover and waits for it (Close):
// it unlinks relative to blobDir, which Close closes next.
func (s *Store) stopRemovals() {
	r := &s.remover
	r.mu.Lock()
	r.closed = true
	if r.stop != nil {
		close(r.stop)
	}
	done := r.done
	r.pending = nil
	r.mu.Unlock()
	if done != nil {
		<-done
	}
}

// removeBlobFiles deletes the files of blobs that are no longer committed.
// Many (a gc of 100,000 avatars removes 300,000) are unlinked by several
// workers: each unlink waits on the file system's journal more than on a CPU.
// The caller holds wmu: no record of ds is committed, and that holds until
// s.commitSeq moves.
func (s *Store) removeBlobFiles(ds []string) { s.removeBlobFilesUntil(ds, nil, s.commitSeq.Load()) }

// removeBlobFilesUntil is removeBlobFiles that stops early when stop is
// closed (the files left are strays the next Open removes); no record of
// ds was committed when s.commitSeq was seq.
func (s *Store) removeBlobFilesUntil(ds []string, stop <-chan struct{}, seq uint64) {
	if len(ds) >= inodeOrderMin {
		if f := s.opts.OnRemoval; f != nil {
			f(true)
			defer f(false)
		}
		// On ext4, 297,000 unlinks in digest order (random with respect to
		// where the inodes are) took 8.4 s, in inode order 4.2 s (issue 15).
		ds = dirent.InodeOrder(s.blobFD, ds, stop)
	}
	// Each worker takes a run of ds: in inode order, a run of neighbouring
	// inodes.
	workers := max(min(len(ds)/removeBatch, maxRemovers), 1)
	run := (len(ds) + workers - 1) / workers
	var wg sync.WaitGroup
	for w := range workers {
		part := ds[min(w*run, len(ds)):min((w+1)*run, len(ds))]
		wg.Go(func() {
			for _, d := range part {
				select {
				case <-stop:
					return
				default:
				}
				s.removeBlobFile(d, seq)
			}
		})
	}
	wg.Wait()
}

// Removals of more than removeBatch files get a worker per removeBatch,
// up to maxRemovers.
const (
	removeBatch = 256
	maxRemovers = 8
)

// inodeOrderMin is the number of files from which a removal unlinks them
// in the order of their inode numbers (dirent.InodeOrder: one read of the
// directory); GNU rm (gnulib's fts) does so from 10,000 entries on. A
// variable for tests.
var inodeOrderMin = 10000

// removeBlobFile deletes the file of a blob that is no longer committed.
// A writer holding the digest will commit it again (rename over whatever
// is there), so the file is left to it; the next Open deletes a file that
// nothing indexes. A commit of d that ended before we took d's lock moved
// s.commitSeq from seq (before it released the lock): only then is d's
// record read again.
func (s *Store) removeBlobFile(d string, seq uint64) {
	if _, ok := rawDigest(d); !ok {
		return // a record's key that is no digest names no file of blobs/sha256
	}
	if !s.locks.tryLock(d) {
		return
	}
	defer s.locks.unlock(d)
	if s.commitSeq.Load() != seq {
		if r, ok, err := s.blobRecord(d); err != nil || ok && r.isCommitted() {
			return // committed again, or not known: the next Open judges it
		}
	}
	// Relative to the open blob directory: no path walk per file. What
	// unlink refuses (a directory) is left to os.Remove.
	err := unix.Unlinkat(s.blobFD, d, 0)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		err = os.Remove(s.BlobPath(d))
	}
	if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("store: remove blob", "digest", d, "err", err)
	}
}
