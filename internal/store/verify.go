package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
)

// VerifyBlob re-hashes a committed blob at rest. A blob that is not
// committed is avatarAssetMissing reason notCached; a missing file,
// avatarAssetMissing reason damaged (wrapping fs.ErrNotExist; so is a
// file that is not regular or cannot be read); wrong bytes,
// avatarAssetMissing reason sizeMismatch or hashMismatch. It changes
// nothing: RemoveBlob drops a blob that failed.
func (s *Store) VerifyBlob(ctx context.Context, digest string) error {
	if !manifest.ValidDigest(digest) {
		return badDigest(digest)
	}
	s.mu.RLock()
	r, ok := s.blobs[digest]
	s.mu.RUnlock()
	bad := func(reason, format string, args ...any) *errs.Error {
		return &errs.Error{Code: errs.AvatarAssetMissing, Phase: errs.PhaseVerify, Reason: reason,
			Message: fmt.Sprintf("blob %s: ", digest) + fmt.Sprintf(format, args...)}
	}
	if !ok || !r.isCommitted() {
		return bad(errs.ReasonNotCached, "not in the store")
	}
	f, err := os.Open(s.BlobPath(digest))
	if errors.Is(err, os.ErrNotExist) {
		e := bad(errs.ReasonDamaged, "file is missing")
		e.Err = err
		return e
	}
	if err != nil {
		return storeErr("verify", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		e := bad(errs.ReasonDamaged, "not a regular file")
		e.Err = err
		return e
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := f.Read(buf)
		h.Write(buf[:m])
		n += int64(m)
		if err == io.EOF {
			break
		}
		if err != nil {
			e := bad(errs.ReasonDamaged, "unreadable: %v", err)
			e.Err = err
			return e
		}
	}
	if n != r.size {
		return bad(errs.ReasonSizeMismatch, "%d bytes at rest, want %d", n, r.size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return bad(errs.ReasonHashMismatch, "sha256 at rest is %s", got)
	}
	return nil
}

// CheckAvatar is the cheap check, made on every Retrieve: it finds the
// blobs of avatar id that are missing, not committed, not a regular file
// or of the wrong size, and returns their asset paths. Each blob is
// stat'd (one fstatat relative to the open blobs directory), unless the
// store's blob-directory watch proves that nothing changed it since an
// earlier stat found it whole (statcache.go). It changes nothing;
// SetState or MarkDamaged records the result.
func (s *Store) CheckAvatar(id string) (damaged []string) {
	s.mu.RLock()
	e := s.avatars[id]
	s.mu.RUnlock()
	if e == nil {
		return nil
	}
	return s.check(e)
}

// check checks e's blobs: the committed marks under one read lock, then
// the files (statBlobs). A file truncated or replaced in place leaves
// the directory's listing as it was: only its own stat, or the watch's
// event, tells.
func (s *Store) check(e *entry) (damaged []string) {
	var bad []bool // by index into e.digests, allocated at the first bad one
	mark := func(i int) {
		if bad == nil {
			bad = make([]bool, len(e.digests))
		}
		bad[i] = true
	}
	s.mu.RLock()
	for i, d := range e.digests {
		if r, ok := s.blobs[d]; !ok || !r.isCommitted() {
			mark(i)
		}
	}
	s.mu.RUnlock()
	s.statBlobs(e.digests, e.sizes, func(i int) bool { return bad != nil && bad[i] }, mark)
	if bad == nil {
		return nil
	}
	for _, as := range e.a.Manifest.Assets {
		if i := slices.Index(e.digests, as.SHA256); i >= 0 && bad[i] {
			damaged = append(damaged, as.Path)
		}
	}
	return damaged
}

// RemoveBlob drops a damaged blob: its committed mark goes (references
// stay, so the avatars keep their claim on it), its file is deleted, and
// the avatars using it become damaged with the affected paths added to
// Damaged. The blob can then be ingested again.
func (s *Store) RemoveBlob(digest string) error {
	if !manifest.ValidDigest(digest) {
		return badDigest(digest)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	r, ok := s.blobs[digest]
	if !ok {
		return nil
	}
	c := newChange()
	if r.refs == 0 {
		c.blobs[digest] = nil
	} else {
		r.committed = 0
		c.blobs[digest] = &r
	}
	for id, e := range s.avatars {
		if slices.Contains(e.digests, digest) {
			c.avatars[id] = damagedEntry(e, map[string]bool{digest: true})
		}
	}
	return s.apply(c)
}

// damagedEntry is e marked damaged for the assets whose digests are bad,
// keeping the paths it already had.
func damagedEntry(e *entry, bad map[string]bool) *entry {
	a := e.a
	a.State = StateDamaged
	a.Damaged = slices.Clone(a.Damaged)
	if e.a.State != StateDamaged {
		a.Damaged = nil
	}
	for _, as := range a.Manifest.Assets {
		if bad[as.SHA256] && !slices.Contains(a.Damaged, as.Path) {
			a.Damaged = append(a.Damaged, as.Path)
		}
	}
	return e.with(a)
}

// Partial is the number of bytes of a partial ingest of digest on disk, 0
// if there is none.
func (s *Store) Partial(digest string) int64 {
	if !manifest.ValidDigest(digest) {
		return 0
	}
	fi, err := os.Stat(s.partialPath(digest))
	if err != nil {
		return 0
	}
	return fi.Size()
}
