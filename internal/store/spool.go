package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Blob modes. A blob the origin serves is no secret: anyone on the device
// may read it. A blob only an import brought may be a private file of the
// importer's, so only root, the daemon's user and the members of the
// daemon's group (the users admitted to the API) may read it.
const (
	ModeShared  fs.FileMode = 0o444
	ModePrivate fs.FileMode = 0o440
)

// Spool is a blob whose digest is not known before its bytes are: a file
// of an import, written to tmp/ while it is hashed, then committed under
// its digest (CommitSpool) or removed. tmp/ is emptied at Open, so a crash
// leaves nothing behind. A Spool is used by one goroutine at a time.
type Spool struct {
	s    *Store
	path string
	f    *os.File
	h    hash.Hash
	size int64 // the most that may be written
	n    int64
}

// Spool starts a blob of at most size bytes in tmp/.
func (s *Store) Spool(size int64) (*Spool, error) {
	if size < 0 {
		return nil, fmt.Errorf("store: negative spool size %d", size)
	}
	var name [12]byte
	rand.Read(name[:])
	p := s.path("tmp", "spool-"+hex.EncodeToString(name[:]))
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, storeErr("create spool", err)
	}
	return &Spool{s: s, path: p, f: f, h: sha256.New(), size: size}, nil
}

// Write appends p; bytes beyond the spool's size are refused.
func (sp *Spool) Write(p []byte) (int, error) {
	if sp.f == nil {
		return 0, errors.New("store: write to a finished spool")
	}
	if int64(len(p)) > sp.size-sp.n {
		return 0, fmt.Errorf("store: more than the %d bytes announced", sp.size)
	}
	n, err := sp.f.Write(p)
	sp.h.Write(p[:n])
	sp.n += int64(n)
	if err != nil {
		return n, storeErr("write spool", err)
	}
	return n, nil
}

// Size is the number of bytes written.
func (sp *Spool) Size() int64 { return sp.n }

// Digest is the hex sha256 of the bytes written.
func (sp *Spool) Digest() string { return hex.EncodeToString(sp.h.Sum(nil)) }

// Remove deletes the spool; it is a no-op once the spool is committed or
// removed.
func (sp *Spool) Remove() error {
	if sp.f == nil {
		return nil
	}
	sp.f.Close()
	sp.f = nil
	if err := os.Remove(sp.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return storeErr("remove spool", err)
	}
	return nil
}

// CommitSpool makes sp the committed blob of its digest, with mode
// ModePrivate and the daemon's group when private, ModeShared otherwise:
// fsync, rename into blobs/sha256, fsync the directory, index, as Commit
// does. A digest already committed is success, and keeps its mode. The
// spool is finished either way.
func (s *Store) CommitSpool(ctx context.Context, sp *Spool, private bool) error {
	if sp.f == nil {
		return errors.New("store: commit of a finished spool")
	}
	d := sp.Digest()
	if err := s.locks.lock(ctx, d); err != nil {
		return errors.Join(fmt.Errorf("store: waiting for blob %s: %w", d, err), sp.Remove())
	}
	defer s.locks.unlock(d)
	if s.HasBlob(d) {
		return sp.Remove()
	}
	mode := ModeShared
	if private {
		mode = ModePrivate
		// The daemon's group, whatever the directory's setgid bit says. The
		// file has it already unless the directory is setgid: chown only
		// then, since the shipped unit's SystemCallFilter=~@privileged
		// refuses every chown, even one that changes nothing.
		if err := sp.daemonGroup(); err != nil {
			return errors.Join(storeErr("chown blob "+d, err), sp.Remove())
		}
	}
	if err := errors.Join(sp.f.Chmod(mode), sp.f.Sync()); err != nil {
		return errors.Join(storeErr("fsync blob "+d, err), sp.Remove())
	}
	sp.f.Close()
	sp.f = nil
	path := sp.path
	return s.publish(d, sp.n, path, func() { _ = os.Remove(path) })
}

// Share makes the committed blobs of digests readable by everyone
// (ModeShared): the origin serves them, so they are no secret, even when
// an import brought them first. Blobs not committed are skipped.
func (s *Store) Share(digests ...string) error {
	var errList []error
	for _, d := range digests {
		if !s.HasBlob(d) {
			continue
		}
		p := s.BlobPath(d)
		fi, err := os.Lstat(p)
		if err != nil {
			errList = append(errList, storeErr("stat blob "+d, err))
			continue
		}
		if fi.Mode().Perm() == ModeShared {
			continue
		}
		if err := os.Chmod(p, ModeShared); err != nil {
			errList = append(errList, storeErr("share blob "+d, err))
		}
	}
	return errors.Join(errList...)
}

// clearTmp empties tmp/: spools of imports a crash or a stop cut short.
func (s *Store) clearTmp() int {
	dir := s.path("tmp")
	ents, err := os.ReadDir(dir)
	if err != nil {
		s.log.Warn("store: list tmp", "err", err)
		return 0
	}
	for _, ent := range ents {
		if err := os.RemoveAll(filepath.Join(dir, ent.Name())); err != nil {
			s.log.Warn("store: remove stray spool", "name", ent.Name(), "err", err)
		}
	}
	return len(ents)
}

// daemonGroup gives the spool file the daemon's group when it has another.
func (sp *Spool) daemonGroup() error {
	gid := os.Getegid()
	fi, err := sp.f.Stat()
	if err != nil {
		return err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Gid) == gid {
		return nil
	}
	return sp.f.Chown(-1, gid)
}
