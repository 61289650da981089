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

	bolt "go.etcd.io/bbolt"

	"github.com/assetd/assetd/apitype/errcode"
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
	r, ok, err := s.blobRecord(digest)
	if err != nil {
		return storeErr("verify", err)
	}
	bad := func(reason, format string, args ...any) *errcode.Error {
		return &errcode.Error{Code: errcode.AvatarAssetMissing, Phase: errcode.PhaseVerify, Reason: reason,
			Message: fmt.Sprintf("blob %s: ", digest) + fmt.Sprintf(format, args...)}
	}
	if !ok || !r.isCommitted() {
		return bad(errcode.ReasonNotCached, "not in the store")
	}
	f, err := os.Open(s.BlobPath(digest))
	if errors.Is(err, os.ErrNotExist) {
		e := bad(errcode.ReasonDamaged, "file is missing")
		e.Err = err
		return e
	}
	if err != nil {
		return storeErr("verify", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		e := bad(errcode.ReasonDamaged, "not a regular file")
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
			e := bad(errcode.ReasonDamaged, "unreadable: %v", err)
			e.Err = err
			return e
		}
	}
	if n != r.size {
		return bad(errcode.ReasonSizeMismatch, "%d bytes at rest, want %d", n, r.size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return bad(errcode.ReasonHashMismatch, "sha256 at rest is %s", got)
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
	e, a := s.peek(id)
	if a == nil {
		return nil
	}
	return s.check(e, a)
}

// check checks a's blobs (e's version): the committed marks, read from
// the index unless e.okAt says no blob lost its mark since a check found
// them all, then the files (statBlobs). A file truncated or replaced in place leaves
// the directory's listing as it was: only its own stat, or the watch's
// event, tells.
func (s *Store) check(e *entry, a *Avatar) (damaged []string) {
	assets := a.Manifest.Assets
	// The distinct digests with their sizes, and for each asset the index
	// of its digest: on the stack for small manifests.
	var dBuf [16]string
	var zBuf [16]int64
	var fBuf [16]int
	digests, sizes, first := dBuf[:0], zBuf[:0], fBuf[:0]
	var seen map[string]int // for large manifests only: a scan is quicker
	if len(assets) > len(dBuf) {
		digests, sizes, first = make([]string, 0, len(assets)), make([]int64, 0, len(assets)), make([]int, 0, len(assets))
		seen = make(map[string]int, len(assets))
	}
	for _, as := range assets {
		j := -1
		if seen != nil {
			if k, ok := seen[as.SHA256]; ok {
				j = k
			} else {
				seen[as.SHA256] = len(digests)
			}
		} else {
			j = slices.Index(digests, as.SHA256)
		}
		if j < 0 {
			j = len(digests)
			digests, sizes = append(digests, as.SHA256), append(sizes, as.Size)
		}
		first = append(first, j)
	}
	var bad []bool // by index into digests, allocated at the first bad one
	mark := func(i int) {
		if bad == nil {
			bad = make([]bool, len(digests))
		}
		bad[i] = true
	}
	if seq := s.uncommits.Load(); e.okAt.Load() != seq+1 {
		err := s.db.View(func(tx *bolt.Tx) error {
			for i, d := range digests {
				r, ok, err := readBlob(tx, d)
				if err != nil {
					return err
				}
				if !ok || !r.isCommitted() {
					mark(i)
				}
			}
			return nil
		})
		switch {
		case err != nil:
			s.log.Error("store: read blob records", "err", err)
			for i := range digests {
				mark(i)
			}
		case bad == nil:
			e.okAt.Store(seq + 1)
		}
	}
	s.statBlobs(digests, sizes, func(i int) bool { return bad != nil && bad[i] }, mark)
	if bad == nil {
		return nil
	}
	for i, as := range assets {
		if bad[first[i]] {
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
	c := s.newChange()
	defer c.close()
	r, ok := c.indexed(digest)
	if !ok {
		return c.err
	}
	if r.refs == 0 {
		c.blobs[digest] = nil
	} else {
		r.committed = 0
		c.blobs[digest] = &r
	}
	var users []string
	if tx := c.tx(); tx != nil {
		var err error
		users, err = avatarsUsing(tx, digest)
		c.fail(err)
	}
	for _, id := range users {
		if s.avatars[id] == nil {
			continue
		}
		if err := s.markBad(c, id, map[string]bool{digest: true}); err != nil {
			return err
		}
	}
	return s.apply(c)
}

// markBad puts in c avatar id marked damaged for the assets whose
// digests are bad, keeping the paths it already had. The caller holds wmu.
func (s *Store) markBad(c *change, id string, bad map[string]bool) error {
	e, cur, err := s.current(id)
	if err != nil {
		return storeErr("read avatar", err)
	}
	a := *cur
	a.State = StateDamaged
	a.Damaged = slices.Clone(a.Damaged)
	if cur.State != StateDamaged {
		a.Damaged = nil
	}
	for _, as := range a.Manifest.Assets {
		if bad[as.SHA256] && !slices.Contains(a.Damaged, as.Path) {
			a.Damaged = append(a.Damaged, as.Path)
		}
	}
	c.avatars[id], c.full[id] = s.with(e, &a), &a
	return nil
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
