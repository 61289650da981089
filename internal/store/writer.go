package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/manifest"
)

// Writer is the ingest of one blob into ingest/<hex>. It holds the
// digest's lock until Commit, Close or Abort, whichever comes first;
// Close and Abort of a finished writer return nil, so `defer w.Close()` is
// always right. It implements fetch's Sink and SplitSink. A Writer is used
// by one goroutine at a time, except that Store and Hash may run at once.
type Writer struct {
	s      *Store
	digest string
	size   int64 // expected
	f      *os.File
	n      int64 // bytes in f (Store's)
	h      hash.Hash
	hashed int64 // bytes h took (Hash's)
	done   bool
}

// Ingest starts, or resumes, the ingest of the blob digest of size bytes.
// It waits (honouring ctx) while another writer has the digest. Bytes a
// previous writer or process left are re-hashed: Size and Digest report
// them, and writing continues after them. Ingest of a committed blob is
// allowed; its Commit succeeds at once.
func (s *Store) Ingest(ctx context.Context, digest string, size int64) (*Writer, error) {
	if !manifest.ValidDigest(digest) {
		return nil, badDigest(digest)
	}
	if size < 0 {
		return nil, fmt.Errorf("store: negative blob size %d", size)
	}
	if err := s.locks.lock(ctx, digest); err != nil {
		return nil, fmt.Errorf("store: waiting for blob %s: %w", digest, err)
	}
	w, err := s.openIngest(digest, size)
	if err != nil {
		s.locks.unlock(digest)
		return nil, err
	}
	return w, nil
}

// partialPath is the partial download of digest d: one file directly in
// ingest/, so that starting a download creates one inode, not a
// directory and a file (ext4 spends more CPU allocating those than the
// download's fsync; Open moves an older assetd's ingest/<hex>/data here).
func (s *Store) partialPath(d string) string { return filepath.Join(s.dir, "ingest", d) }

func (s *Store) openIngest(d string, size int64) (*Writer, error) {
	data := s.partialPath(d)
	f, err := os.OpenFile(data, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, os.ErrPermission) {
		// A crash between Commit's chmod and its rename left it read-only.
		if err = os.Chmod(data, 0o600); err == nil {
			f, err = os.OpenFile(data, os.O_RDWR|os.O_CREATE, 0o600)
		}
	}
	if err != nil {
		return nil, storeErr("open ingest", err)
	}
	w := &Writer{s: s, digest: d, size: size, f: f, h: sha256.New()}
	n, err := io.Copy(w.h, f)
	w.n, w.hashed = n, n
	if err == nil && n > size {
		err = w.Truncate()
	}
	if err != nil {
		f.Close()
		return nil, storeErr("read partial ingest", err)
	}
	return w, nil
}

// Write appends p, hashing it. Bytes beyond the expected size are refused
// (sizeMismatch). A full disk is insufficientStorage wrapping
// syscall.ENOSPC; Abort then frees what was written.
func (w *Writer) Write(p []byte) (int, error) {
	n, err := w.Store(p)
	w.Hash(p[:n])
	return n, err
}

// Store is Write without the hash: Hash must then get the n bytes it
// took, in order, before Digest or Commit. The two touch different state
// and may run at once on two goroutines (fetch's download overlaps the
// file write of one read with the hash of the read before it).
func (w *Writer) Store(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("store: write to a finished writer")
	}
	room := w.size - w.n
	tooMuch := int64(len(p)) > room
	if tooMuch {
		p = p[:room]
	}
	n, err := w.f.Write(p)
	w.n += int64(n)
	if err != nil {
		return n, storeErr("write blob "+w.digest, err)
	}
	if tooMuch {
		return n, mismatch(errcode.ReasonSizeMismatch, w.digest, "more than the expected %d bytes", w.size)
	}
	return n, nil
}

// Hash hashes the next bytes Store took.
func (w *Writer) Hash(p []byte) {
	w.h.Write(p)
	w.hashed += int64(len(p))
}

// Size is the number of bytes held: the resume offset.
func (w *Writer) Size() int64 { return w.n }

// Digest is the hex sha256 of the bytes held. Should the hash not have
// taken exactly the bytes Store did (a caller's bug), the file is hashed
// again, so that the digest is always the file's.
func (w *Writer) Digest() string {
	if w.hashed != w.n {
		w.h.Reset()
		w.hashed = 0
		if _, err := w.f.Seek(0, io.SeekStart); err != nil {
			return ""
		}
		n, err := io.Copy(w.h, io.LimitReader(w.f, w.n))
		w.hashed = n
		if _, serr := w.f.Seek(w.n, io.SeekStart); err != nil || serr != nil || n != w.n {
			return ""
		}
	}
	return hex.EncodeToString(w.h.Sum(nil))
}

// Truncate drops every byte held; writing restarts at 0.
func (w *Writer) Truncate() error {
	if err := w.f.Truncate(0); err != nil {
		return storeErr("truncate ingest", err)
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return storeErr("truncate ingest", err)
	}
	w.h.Reset()
	w.n, w.hashed = 0, 0
	return nil
}

// Commit makes the blob durable and indexed: check size and sha256, 0444,
// fsync, rename into blobs/sha256, fsync the directory, index. A blob
// that is already committed is success. A size or hash mismatch deletes
// the partial and is failedToDownloadAvatarAssets (phase verify, reason
// sizeMismatch or hashMismatch). Commit always finishes the writer; after
// other errors the partial is kept for a later resume.
func (w *Writer) Commit() error {
	if w.done {
		return errors.New("store: commit of a finished writer")
	}
	s, d := w.s, w.digest
	if s.HasBlob(d) {
		return w.discard()
	}
	switch got := w.Digest(); {
	case w.n != w.size:
		err := mismatch(errcode.ReasonSizeMismatch, d, "got %d bytes, want %d", w.n, w.size)
		return errors.Join(err, w.Abort())
	case got != d:
		err := mismatch(errcode.ReasonHashMismatch, d, "got sha256 %s", got)
		return errors.Join(err, w.Abort())
	}
	if err := errors.Join(w.f.Chmod(0o444), w.f.Sync()); err != nil {
		_ = w.f.Chmod(0o600)
		return errors.Join(storeErr("fsync blob "+d, err), w.Close())
	}
	w.f.Close()
	w.done = true
	defer s.locks.unlock(d)
	// Holding the digest's lock, no one else commits d. The file is made
	// durable in blobs/ first and indexed after, each step shared with the
	// commits arriving at the same time (commit.go). A failed rename keeps
	// the partial for resume.
	if s.HasBlob(d) {
		return removePartial(s.partialPath(d))
	}
	data := s.partialPath(d)
	return s.publish(d, w.size, data, func() { _ = os.Chmod(data, 0o600) })
}

// removePartial deletes a partial download; one already gone is success.
func removePartial(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// discard ends the writer and deletes the partial.
func (w *Writer) discard() error {
	s, d := w.s, w.digest
	w.f.Close()
	w.done = true
	defer s.locks.unlock(d)
	return removePartial(s.partialPath(d))
}

// Close ends the writer and keeps the partial for a later resume.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	defer w.s.locks.unlock(w.digest)
	if err := w.f.Close(); err != nil {
		return storeErr("close ingest", err)
	}
	return nil
}

// Abort ends the writer and deletes the partial.
func (w *Writer) Abort() error {
	if w.done {
		return nil
	}
	if err := w.discard(); err != nil {
		return storeErr("abort ingest", err)
	}
	return nil
}
