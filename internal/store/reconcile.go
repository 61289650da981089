package store

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

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
//     committed mark (the file goes) and their avatars become damaged: the
//     missing ones by the listing, the sizes after Open returns (a stat of
//     each of 300,000 blobs took half a second of the start; checkSizes);
//   - partial ingests stay if written to within ingestGrace, except for
//     blobs already committed (the index does not record partials);
//   - tmp/ is emptied: an import's spools are never resumed.
//
// It works from one listing of blobs/sha256 (scanBlobs) and refs, every
// digest the avatars use (once per avatar), merged in digest order with a
// walk of the blob records; it counts the records (s.counts) as it goes.
func (s *Store) reconcile(scan blobScan, refs [][32]byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if scan.err != nil {
		return scan.err
	}
	c := s.newChange()
	defer c.close()
	for _, name := range scan.other {
		s.log.Warn("store: unexpected file in blobs/sha256", "name", name)
	}
	files := scan.files
	cmp32 := compareDigests // files and refs come sorted (scanBlobs, load)

	var strays []string
	bad := map[[32]byte]bool{}
	cutoff := s.now().Add(-orphanGrace).UnixNano()
	ri, fi := 0, 0
	sized := 0 // files[:sized]: committed blobs listed, with their sizes
	// before handles the digests before d (all that are left when d is
	// nil): referenced ones with no record, and files with none.
	before := func(d *[32]byte) {
		for ri < len(refs) && (d == nil || cmp32(refs[ri], *d) < 0) {
			k, n := refs[ri], int64(0)
			for ; ri < len(refs) && refs[ri] == k; ri++ {
				n++
			}
			c.blobs[hex.EncodeToString(k[:])] = &blobRec{refs: n}
			bad[k] = true
		}
		for ; fi < len(files) && (d == nil || cmp32(files[fi].d, *d) < 0); fi++ {
			strays = append(strays, hex.EncodeToString(files[fi].d[:]))
		}
	}
	var counts blobCounts
	tx := c.tx()
	if tx == nil {
		return c.err
	}
	err := tx.Bucket(bucketBlobs).ForEach(func(k, v []byte) error {
		r, err := decodeBlob(v)
		if err != nil {
			return fmt.Errorf("blob %s: %w", k, err)
		}
		counts.add(r, +1) // (apply counts out what c drops)
		d, ok := rawDigest(k)
		if !ok {
			s.log.Warn("store: unexpected blob record", "key", k)
			c.blobs[string(k)] = nil
			return nil
		}
		ds := func() string { return string(k) } // allocated only when kept
		before(&d)
		var want int64
		for ; ri < len(refs) && refs[ri] == d; ri++ {
			want++
		}
		onDisk := false
		if fi < len(files) && files[fi].d == d {
			if r.isCommitted() {
				// Listed: its size is checked after Open returns
				// (checkSizes), in place in files.
				onDisk = true
				files[sized] = scanFile{d: d, size: r.size}
				sized++
			} else {
				strays = append(strays, ds())
			}
			fi++
		}
		nr := r
		nr.refs = want
		if r.isCommitted() && !onDisk {
			s.log.Warn("store: blob is missing", "digest", ds())
			nr.committed = 0
		}
		switch {
		case want == 0 && (!nr.isCommitted() || nr.committed < cutoff):
			c.blobs[ds()] = nil
			if nr.isCommitted() {
				strays = append(strays, ds())
			}
		case nr != r:
			c.blobs[ds()] = &nr
		}
		if want > 0 && !nr.isCommitted() {
			bad[d] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	before(nil)
	files, refs = files[:sized], nil
	s.mu.Lock()
	s.counts = counts
	s.mu.Unlock()
	damaged := 0
	if len(bad) > 0 {
		badHex := make(map[string]bool, len(bad))
		for d := range bad {
			badHex[hex.EncodeToString(d[:])] = true
		}
		var ds [][32]byte
		err := tx.Bucket(bucketAvatars).ForEach(func(k, v []byte) error {
			var err error
			if _, ds, err = decodeEntry(v, ds[:0]); err != nil {
				return fmt.Errorf("avatar %q: %w", k, err)
			}
			for _, d := range ds {
				if bad[d] {
					damaged++
					return s.markBad(c, string(k), badHex)
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	ingests := s.reconcileIngests(c) + s.clearTmp()
	if len(c.avatars)+len(c.blobs) > 0 {
		if err := s.apply(c); err != nil {
			return err
		}
	}
	// Open returns before two things, which Close stops and waits for:
	//   - the size check of every committed blob listed (checkSizes), a
	//     stat each: until it ends, a blob truncated while the daemon was
	//     down is found as one truncated while it runs is, by the stat
	//     every check (Retrieve) makes of the files it serves;
	//   - the removal of many files no record holds (a crash in the middle
	//     of a gc), queued for the background remover once the size check
	//     ends (remove.go), as a gc's files are: nothing reads them, and a
	//     load committing one of these digests again is kept apart by its
	//     lock, as for any removal.
	var many []string
	if len(strays) > removeBatch {
		many = strays
	} else {
		s.removeBlobFiles(strays)
	}
	r := &sizeCheck{stop: make(chan struct{}), done: make(chan struct{})}
	s.checking = r
	seq := s.commitSeq.Load()
	go func() {
		defer close(r.done)
		if sizeCheckHook != nil {
			sizeCheckHook()
		}
		s.checkSizes(files, r.stop)
		if len(many) > 0 {
			s.removeLater(many, seq)
		}
	}()
	if len(strays)+damaged+len(c.blobs)+ingests > 0 {
		s.log.Info("store: reconciled", "stray_blobs", len(strays), "damaged_avatars", damaged,
			"blob_records", len(c.blobs), "stale_ingests", ingests)
	}
	return nil
}

// reconcileIngests removes the partials not worth resuming and returns
// how many.
func (s *Store) reconcileIngests(c *change) (removed int) {
	dir := s.path("ingest")
	ents, err := os.ReadDir(dir)
	if err != nil {
		s.log.Warn("store: list ingests", "err", err)
		return 0
	}
	cutoff := s.now().Add(-ingestGrace)
	for _, ent := range ents {
		name := ent.Name()
		keep := manifest.ValidDigest(name)
		if keep {
			r, _ := c.indexed(name)
			keep = !r.isCommitted()
		}
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

// blobScan is one listing of blobs/sha256: each file named by a digest
// (its size is checked later: checkSizes), and the other names.
type blobScan struct {
	files []scanFile
	other []string
	err   error
}

type scanFile struct {
	d    [32]byte
	size int64
}

// scanChunk is how many names scanBlobs reads at a time: 300,000 names
// as strings would take 24 MiB at once, as digests 12.
var scanChunk = 4096 // a variable for tests

// scanBlobs lists blobs/sha256 once, a chunk at a time. Open runs it
// while it loads the index.
func scanBlobs(dir *os.File) (scan blobScan) {
	for {
		names, err := dir.Readdirnames(scanChunk)
		for _, name := range names {
			if d, ok := rawDigest(name); ok {
				scan.files = append(scan.files, scanFile{d: d})
			} else {
				scan.other = append(scan.other, name)
			}
		}
		if errors.Is(err, io.EOF) {
			// Sorted here, beside the load of the index.
			slices.SortFunc(scan.files, func(a, b scanFile) int { return compareDigests(a.d, b.d) })
			return scan
		}
		if err != nil {
			scan.err = err
			return scan
		}
	}
}

// sizeCheckHook, when set, runs before checkSizes: a seam for tests.
var sizeCheckHook func()

// checkSizes stats the committed blobs listed at Open (files, with the
// sizes their records want), on every CPU, until stop is closed. A blob
// whose file is not a regular file of its size then, and still is under
// wmu, loses its committed mark as at Open (its file goes, its avatars
// become damaged).
func (s *Store) checkSizes(files []scanFile, stop <-chan struct{}) {
	workers := min(runtime.GOMAXPROCS(0), len(files)/512+1)
	suspects := make([][][32]byte, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for n, i := 0, w; i < len(files); n, i = n+1, i+workers {
				if n%256 == 0 {
					select {
					case <-stop:
						return
					default:
					}
				}
				if !s.sizeOK(files[i].d, files[i].size) {
					suspects[w] = append(suspects[w], files[i].d)
				}
			}
		})
	}
	wg.Wait()
	bad := slices.Concat(suspects...)
	if len(bad) == 0 {
		return
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-stop:
		return
	default:
	}
	c := s.newChange()
	defer c.close()
	users := map[[32]byte]bool{}
	for _, d := range bad {
		ds := hex.EncodeToString(d[:])
		r, ok := c.indexed(ds)
		if !ok || !r.isCommitted() || s.sizeOK(d, r.size) {
			continue // changed since
		}
		s.log.Warn("store: blob is missing or has the wrong size", "digest", ds, "want", r.size)
		if r.refs == 0 {
			c.blobs[ds] = nil
			continue
		}
		nr := r
		nr.committed = 0
		c.blobs[ds] = &nr
		users[d] = true
	}
	if tx := c.tx(); tx != nil && len(users) > 0 {
		badHex := make(map[string]bool, len(users))
		for d := range users {
			badHex[hex.EncodeToString(d[:])] = true
		}
		var ds [][32]byte
		c.fail(tx.Bucket(bucketAvatars).ForEach(func(k, v []byte) error {
			var err error
			if _, ds, err = decodeEntry(v, ds[:0]); err != nil {
				return fmt.Errorf("avatar %q: %w", k, err)
			}
			for _, d := range ds {
				if users[d] && s.avatars[string(k)] != nil {
					return s.markBad(c, string(k), badHex)
				}
			}
			return nil
		}))
	}
	if len(c.blobs) == 0 {
		return
	}
	if err := s.apply(c); err != nil {
		s.log.Error("store: record blobs found missing or truncated", "err", err)
		return
	}
	s.log.Info("store: blobs found missing or truncated after the start", "blobs", len(c.blobs), "damaged_avatars", len(c.avatars))
}

// sizeOK reports whether blobs/sha256/<d> is a regular file of size bytes.
func (s *Store) sizeOK(d [32]byte, size int64) bool {
	var name [64]byte
	hex.Encode(name[:], d[:])
	var st unix.Stat_t
	err := unix.Fstatat(s.blobFD, string(name[:]), &st, unix.AT_SYMLINK_NOFOLLOW)
	return err == nil && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == size
}

// compareDigests orders raw digests as their hex is ordered (bbolt's
// keys).
func compareDigests(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) }

// unhex is each byte's value as a lower-case hex digit, or 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

// rawDigest is the 32 bytes of hexDigest, and whether it is a digest as
// manifest.ValidDigest has it (64 lower-case hex digits), in one pass and
// without a copy of it.
func rawDigest[T string | []byte](hexDigest T) (d [32]byte, ok bool) {
	if len(hexDigest) != 64 {
		return d, false
	}
	var bad byte
	for i := range d {
		hi, lo := unhex[hexDigest[2*i]], unhex[hexDigest[2*i+1]]
		bad |= hi | lo
		d[i] = hi<<4 | lo&0x0f
	}
	return d, bad&0xf0 == 0
}
