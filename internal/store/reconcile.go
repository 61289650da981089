package store

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/assetd/assetd/internal/manifest"
)

// reconcile makes the index and the disk agree, at Open:
//   - refcounts are recounted from the avatars' current versions;
//   - files in blobs/sha256 the index does not hold as committed go, and so
//     do committed blobs nothing has referenced for orphanGrace (more than
//     removeBatch files, as a crash in the middle of a gc leaves, go after
//     Open returns; Close stops that, and the next Open goes on);
//   - committed blobs whose file is missing or of the wrong size lose their
//     committed mark (the file goes) and their avatars become damaged;
//   - partial ingests stay if written to within ingestGrace, except for
//     blobs already committed (the index does not record partials);
//   - tmp/ is emptied: an import's spools are never resumed.
//
// It works from one listing of blobs/sha256 (scanBlobs).
func (s *Store) reconcile(scan blobScan) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if scan.err != nil {
		return scan.err
	}
	c := newChange()
	onDisk := make(map[string]bool, len(scan.names))
	var strays []string
	for i, name := range scan.names {
		r, ok := s.blobs[name]
		switch {
		case !ok || !r.isCommitted():
			if manifest.ValidDigest(name) {
				strays = append(strays, name)
			} else {
				s.log.Warn("store: unexpected file in blobs/sha256", "name", name)
			}
		case scan.sizes[i] == r.size:
			onDisk[name] = true
		case scan.sizes[i] >= 0:
			s.log.Warn("store: blob has the wrong size", "digest", name, "size", scan.sizes[i], "want", r.size)
			strays = append(strays, name)
		}
	}

	refs := make(map[string]int64, len(s.blobs))
	for _, e := range s.avatars {
		for _, d := range e.digests {
			refs[d]++
		}
	}
	bad := map[string]bool{}
	cutoff := s.now().Add(-orphanGrace).UnixNano()
	recorded := 0 // referenced digests that have a record
	for d, r := range s.blobs {
		want := refs[d]
		if want > 0 {
			recorded++
		}
		nr := r
		nr.refs = want
		if r.isCommitted() && !onDisk[d] {
			s.log.Warn("store: blob is missing", "digest", d)
			nr.committed = 0
		}
		switch {
		case want == 0 && (!nr.isCommitted() || nr.committed < cutoff):
			c.blobs[d] = nil
			if nr.isCommitted() {
				strays = append(strays, d)
			}
		case nr != r:
			c.blobs[d] = &nr
		}
		if want > 0 && !nr.isCommitted() {
			bad[d] = true
		}
	}
	for d, n := range refs {
		if recorded == len(refs) {
			break
		}
		if _, ok := s.blobs[d]; !ok {
			c.blobs[d] = &blobRec{refs: n}
			bad[d] = true
			recorded++
		}
	}
	if len(bad) > 0 {
		for id, e := range s.avatars {
			for _, d := range e.digests {
				if bad[d] {
					if err := s.markBad(c, id, bad); err != nil {
						return err
					}
					break
				}
			}
		}
	}
	ingests := s.reconcileIngests() + s.clearTmp()
	if len(c.avatars)+len(c.blobs) > 0 {
		if err := s.apply(c); err != nil {
			return err
		}
	}
	if len(strays) > removeBatch {
		// Many files no record holds: a crash in the middle of a gc. Open
		// returns without waiting for them (nothing reads them; a load
		// committing one of these digests again is kept apart by its
		// lock, as for any removal); Close stops and waits.
		stop, done := make(chan struct{}), make(chan struct{})
		s.strays = &strayRemoval{stop: stop, done: done}
		go func() {
			defer close(done)
			s.removeBlobFilesUntil(strays, stop)
		}()
	} else {
		s.removeBlobFiles(strays)
	}
	if len(strays)+len(c.avatars)+len(c.blobs)+ingests > 0 {
		s.log.Info("store: reconciled", "stray_blobs", len(strays), "damaged_avatars", len(c.avatars),
			"blob_records", len(c.blobs), "stale_ingests", ingests)
	}
	return nil
}

// reconcileIngests removes the partials not worth resuming and returns
// how many.
func (s *Store) reconcileIngests() (removed int) {
	dir := s.path("ingest")
	ents, err := os.ReadDir(dir)
	if err != nil {
		s.log.Warn("store: list ingests", "err", err)
		return 0
	}
	cutoff := s.now().Add(-ingestGrace)
	for _, ent := range ents {
		name := ent.Name()
		keep := manifest.ValidDigest(name) && !s.blobs[name].isCommitted()
		if keep && ent.IsDir() {
			keep = s.adoptLegacyIngest(name)
		}
		if keep {
			// A partial nothing has written to for ingestGrace
			// belongs to a version or avatar no load came back for: kept,
			// it would hold its disk space for ever, unseen by the quota.
			fi, err := os.Lstat(s.partialPath(name))
			keep = err == nil && fi.Mode().IsRegular() && fi.ModTime().After(cutoff)
		}
		if keep {
			continue
		}
		removed++
		if err := os.RemoveAll(s.partialPath(name)); err != nil {
			s.log.Warn("store: remove stray ingest", "name", name, "err", err)
		}
	}
	return removed
}

// adoptLegacyIngest moves the partial an older assetd left in
// ingest/<hex>/data to ingest/<hex>, through tmp/ (a file cannot replace
// its own directory in one rename). False when there was none to move. A
// crash halfway loses the partial, never a committed byte: tmp/ is emptied
// at Open.
func (s *Store) adoptLegacyIngest(d string) bool {
	dir := s.partialPath(d)
	mid := s.path("tmp", "ingest-"+d)
	if err := os.Rename(filepath.Join(dir, "data"), mid); err != nil {
		return false
	}
	if err := errors.Join(os.RemoveAll(dir), os.Rename(mid, dir)); err != nil {
		s.log.Warn("store: move a partial download to ingest/<hex>", "digest", d, "err", err)
		_ = os.Remove(mid)
		return false
	}
	return true
}

// blobScan is one listing of blobs/sha256 with each name's size (-1: not a
// regular file, or gone).
type blobScan struct {
	names []string
	sizes []int64
	err   error
}

// scanBlobs lists blobs/sha256 once and fstatats every name relative to
// the directory, on every CPU. Open runs it while it loads the index.
func scanBlobs(dir *os.File) (scan blobScan) {
	if scan.names, scan.err = dir.Readdirnames(-1); scan.err != nil {
		return scan
	}
	scan.sizes = make([]int64, len(scan.names))
	fd := int(dir.Fd())
	workers := min(runtime.GOMAXPROCS(0), len(scan.names)/512+1)
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for i := w; i < len(scan.names); i += workers {
				var st unix.Stat_t
				err := unix.Fstatat(fd, scan.names[i], &st, unix.AT_SYMLINK_NOFOLLOW)
				switch {
				case errors.Is(err, unix.ENOENT) || err == nil && st.Mode&unix.S_IFMT != unix.S_IFREG:
					scan.sizes[i] = -1
				case err != nil:
					return err
				default:
					scan.sizes[i] = st.Size
				}
			}
			return nil
		})
	}
	scan.err = g.Wait()
	return scan
}
