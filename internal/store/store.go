package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"golang.org/x/sync/errgroup"

	"github.com/assetd/assetd/internal/manifest"
)

// Options configure a Store.
type Options struct {
	MaxBytes     int64 // quota; 0 = none
	ReserveBytes int64 // free disk space always left
	Logger       *slog.Logger
	Now          func() time.Time                // nil = time.Now
	FreeSpace    func(dir string) (int64, error) // nil = statfs; a seam for tests
	LockTimeout  time.Duration                   // how long Open waits for another process's lock; 0 = 1s
	// OnRemoval, if set, is called with true before the store unlinks
	// many files of its blob directory at once (a gc's, or the strays
	// Open found: inodeOrderMin or more) and with false once it is done,
	// from the goroutine that removes them: the daemon pauses its watch
	// of the directory meanwhile (the store's own removals need no report).
	OnRemoval func(removing bool)
}

// Grace periods of reconciliation.
const (
	// Partials with no index entry survive Open this long (resume).
	ingestGrace = 24 * time.Hour
	// Committed blobs no avatar references yet (a load that failed after
	// committing some of its blobs) survive Open and eviction this long.
	orphanGrace = time.Hour
)

// ErrInUse is matched (errors.Is) by Open's error when another process
// holds the store.
var ErrInUse = errors.New("store is in use by another assetd")

type inUseError struct {
	dir string
	err error
}

func (e *inUseError) Error() string {
	return fmt.Sprintf("store %s is in use by another assetd", e.dir)
}
func (e *inUseError) Unwrap() error        { return e.err }
func (e *inUseError) Is(target error) bool { return target == ErrInUse }

// Store is the avatar cache of one directory. Its methods are safe for
// concurrent use. Stats is served from memory; Get from memory or the
// index (hot.go); blob records from the index (blobindex.go).
type Store struct {
	dir       string
	opts      Options
	log       *slog.Logger
	now       func() time.Time
	freeSpace func(string) (int64, error)

	db      *bolt.DB
	blobDir *os.File  // blobs/sha256, for fsync and fstatat
	blobFD  int       // blobDir's descriptor
	statc   statCache // the checks' trusted stats, watched (statcache.go)
	locks   keyLocker

	// wmu serialises every change of the index and of the maps below;
	// mu guards the maps for readers, and is held only briefly.
	wmu     sync.Mutex
	mu      sync.RWMutex
	avatars map[string]*entry
	hot     map[string]*Avatar // decoded avatars, at most maxHot (hot.go)
	wseq    atomic.Uint64      // odd while apply writes (hot.go)
	counts  blobCounts         // of the blob records (blobindex.go)

	// uncommits counts the blobs that lost their committed mark or record
	// (an entry's okAt: its blobs were all committed at that count), and
	// commitSeq the applies that committed some (removeBlobFile); apply
	// moves both under mu, after its transaction.
	uncommits atomic.Uint64
	commitSeq atomic.Uint64

	dirty atomic.Bool // some entry has an unflushed lastUsed

	publishes publishQueue // fsynced files waiting for their rename (commit.go)
	commits   commitQueue  // blob records waiting for the index (commit.go)
	dirSyncs  atomic.Int64 // fsyncs of blobs/ by commits: one per batch

	// lmu guards leases: digests that must not be collected (lease.go).
	// It is taken alone or inside wmu, never the other way round.
	lmu    sync.Mutex
	leases map[string]int

	// checking is what Open left running (reconcile.go): the size check
	// of the blobs listed, then the queueing of the files no record holds
	// for the remover. Close stops it and waits. Guarded by wmu.
	checking *sizeCheck

	// remover removes in the background the files of a gc and the
	// strays Open found (remove.go); Close stops it and waits.
	remover remover

	// The quota and the reserve: opts.MaxBytes and opts.ReserveBytes
	// until SetLimits (a reloaded configuration) changes them.
	maxBytes, reserveBytes atomic.Int64
}

// sizeCheck is what Open leaves running: the size check of the blobs it
// listed, then the queueing of the strays it found for the remover.
type sizeCheck struct {
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the check returns
}

// entry is the in-memory avatar: what eviction, Stats and reference
// counting need, not the avatar (hot.go reads that from the index on
// demand). An entry is never modified once in the map (a change replaces
// it), but for lastUsed and dirty, and mf, set under mu.
type entry struct {
	lastUsed atomic.Int64
	dirty    atomic.Bool
	pinned   bool
	state    uint8 // stateCode
	// okAt is uncommits+1 when a check found every blob of this version
	// committed, so that the next one needs no index read (0: unknown).
	okAt atomic.Uint64
	// mf is the manifest of this version while anything holds it (the
	// hot cache, a caller, the manager's views and trust verdicts): an
	// avatar read again from the index gets the same *Manifest, so that
	// identity means "this version" to those who compare it.
	mf weak.Pointer[manifest.Manifest]
}

// with is an entry of the same version as e for a (an edit). The caller
// holds wmu.
func (s *Store) with(e *entry, a *Avatar) *entry {
	n := &entry{pinned: a.Pinned, state: stateCode(a.State)}
	s.mu.RLock()
	n.mf = e.mf
	s.mu.RUnlock()
	return n
}

// Open opens (creating if need be) the store in dir: layout, index,
// migrations, then reconciliation of disk and index.
func Open(dir string, opts Options) (*Store, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, opts: opts, log: opts.Logger, now: opts.Now, freeSpace: opts.FreeSpace,
		avatars: map[string]*entry{}, hot: map[string]*Avatar{}}
	s.maxBytes.Store(opts.MaxBytes)
	s.reserveBytes.Store(opts.ReserveBytes)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.freeSpace == nil {
		s.freeSpace = statfsFree
	}
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o755}, {s.path("blobs"), 0o755}, {s.path("blobs", "sha256"), 0o755}, {s.path("ingest"), 0o700}, {s.path("tmp"), 0o700}} {
		mkdir := os.Mkdir
		if d.path == dir {
			mkdir = os.MkdirAll // --state-dir a/b/c makes a and b too, as for the socket
		}
		if err := mkdir(d.path, d.mode); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("store: %w", err)
		}
	}
	timeout := opts.LockTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	// The flock timeout makes a second daemon fail fast. The hashmap
	// freelist is the fast one; the freelist is still synced, so reopening
	// after a crash does not scan the whole file.
	db, err := bolt.Open(s.path("index.db"), 0o600, &bolt.Options{Timeout: timeout, FreelistType: bolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, &inUseError{dir: dir, err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("store: open index: %w", err)
	}
	s.db = db
	if err := s.open(); err != nil {
		s.db.Close()
		if s.blobDir != nil {
			s.statc.close()
			s.blobDir.Close()
		}
		return nil, err
	}
	return s, nil
}

func (s *Store) open() error {
	var err error
	if err = migrate(s.db, migrations); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if s.blobDir, err = os.Open(s.path("blobs", "sha256")); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	s.blobFD = int(s.blobDir.Fd())
	start := time.Now()
	scanned := make(chan blobScan, 1)
	go func() { scanned <- scanBlobs(s.blobDir) }()
	refs, err := s.load()
	scan := <-scanned
	if err != nil {
		return fmt.Errorf("store: load index: %w", err)
	}
	loaded := time.Now()
	if err = s.reconcile(scan, refs); err != nil {
		return fmt.Errorf("store: reconcile: %w", err)
	}
	s.mu.RLock() // the size check may be recording damage already
	avatars, blobs := len(s.avatars), s.counts.committed
	s.mu.RUnlock()
	s.log.Info("store: opened", "dir", s.dir, "avatars", avatars, "blobs", blobs,
		"load", loaded.Sub(start), "reconcile", time.Since(loaded))
	return nil
}

func (s *Store) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

// load reads the avatars' entries into memory, decoding records on every
// CPU, and returns every digest the avatars use, once per avatar, for
// reconcile's count of references. Blob records and raw manifests stay
// in the index.
func (s *Store) load() (refs [][32]byte, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		var keys, vals [][]byte
		err := tx.Bucket(bucketAvatars).ForEach(func(k, v []byte) error {
			keys, vals = append(keys, k), append(vals, v)
			return nil
		})
		if err != nil {
			return err
		}
		var entries []*entry
		entries, refs, err = decodeAvatars(keys, vals)
		if err != nil {
			return err
		}
		sortDigests(refs) // beside the listing of blobs/ (reconcile merges them)
		used := tx.Bucket(bucketLastUsed)
		for i, e := range entries {
			if u := used.Get(keys[i]); len(u) == 8 {
				e.lastUsed.Store(int64(binary.BigEndian.Uint64(u)))
			}
			s.avatars[string(keys[i])] = e
		}
		return nil
	})
	return refs, err
}

// decodeAvatars decodes the entries of avatar records in parallel, and
// their digests; the values are bbolt's and valid only in the calling
// transaction.
func decodeAvatars(keys, vals [][]byte) ([]*entry, [][32]byte, error) {
	out := make([]*entry, len(keys))
	workers := min(runtime.GOMAXPROCS(0), len(keys)/256+1)
	refs := make([][][32]byte, workers)
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			ds := make([][32]byte, 0, (len(keys)/workers+1)*4)
			for i := w; i < len(keys); i += workers {
				e, more, err := decodeEntry(vals[i], ds)
				if err != nil {
					return fmt.Errorf("avatar %q: %w", keys[i], err)
				}
				out[i], ds = e, more
			}
			refs[w] = ds
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return out, slices.Concat(refs...), nil
}

// newEntry is the entry of a new version, a.
func newEntry(a *Avatar) *entry {
	e := &entry{pinned: a.Pinned, state: stateCode(a.State)}
	e.mf = weak.Make(a.Manifest)
	return e
}

// distinctDigests is the digests of assets, each once, in order.
func distinctDigests(assets []manifest.Asset) []string {
	n := len(assets)
	ds := make([]string, 0, n)
	var seen map[string]bool // for large manifests only: a scan is quicker
	if n > 16 {
		seen = make(map[string]bool, n)
	}
	for _, as := range assets {
		if seen != nil && seen[as.SHA256] || seen == nil && slices.Contains(ds, as.SHA256) {
			continue
		}
		if seen != nil {
			seen[as.SHA256] = true
		}
		ds = append(ds, as.SHA256)
	}
	return ds
}

// Close flushes lastUsed times and closes the index. The Store must not be
// used afterwards.
func (s *Store) Close() error {
	err := s.Flush()
	s.wmu.Lock()
	r := s.checking
	s.checking = nil
	s.wmu.Unlock()
	if r != nil { // stopped outside wmu: its size check applies under it
		close(r.stop)
		<-r.done // it stats and unlinks relative to blobDir
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.stopRemovals() // it unlinks relative to blobDir
	if s.blobDir != nil {
		s.statc.close()
		s.blobDir.Close()
	}
	return errors.Join(err, s.db.Close())
}

// Dir is the store directory (absolute).
func (s *Store) Dir() string { return s.dir }

// BlobPath is dir/blobs/sha256/<hex>.
func (s *Store) BlobPath(digest string) string {
	return filepath.Join(s.dir, "blobs", "sha256", digest)
}

// HasBlob reports whether digest is committed: indexed, and on disk as far
// as the store knows (Open, VerifyBlob and RemoveBlob keep that true).
func (s *Store) HasBlob(digest string) bool { return s.committed(digest) }

// Flush writes the lastUsed times Touch recorded since the last Flush. The
// daemon calls it every 30 s or so; Close calls it too.
func (s *Store) Flush() error {
	if !s.dirty.Swap(false) {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	type use struct {
		e  *entry
		id string
		at int64
	}
	var uses []use
	s.mu.RLock()
	for id, e := range s.avatars {
		if e.dirty.Swap(false) {
			uses = append(uses, use{e, id, e.lastUsed.Load()})
		}
	}
	s.mu.RUnlock()
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketLastUsed)
		for _, u := range uses {
			if err := b.Put([]byte(u.id), u64(uint64(u.at))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for _, u := range uses {
			u.e.dirty.Store(true)
		}
		s.dirty.Store(true)
		return fmt.Errorf("store: flush last-used times: %w", err)
	}
	return nil
}
