package manager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"syscall"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/caller"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// Import makes an avatar of the files already on the device under dir (the
// SDKs' derive): every regular file below dir becomes an asset named by its
// '/'-separated path relative to dir. Symbolic links are followed only
// within dir (a link to a directory is skipped); a link out of dir, a
// device, FIFO or socket, an invalid path or a file over the size limit
// rejects the whole tree. version "" means "local-" and a short hash of the
// manifest. The avatar's source is "import"; Load serves it from the cache
// without asking the origin while its files are intact.
//
// The files are read with the rights of the caller that ctx names
// (caller.FromContext), not the daemon's: a caller other than root or the
// daemon's own user may import only a folder and files it owns, so that
// nobody can have the daemon copy out a file it could not read itself (the
// session token, the daemon's state).
func (m *Manager) Import(ctx context.Context, id, dir, version string) (*apitype.Avatar, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, importErr(id, "", "cannot open %s: %v", dir, err)
	}
	defer root.Close()
	ctx = withOwnerCheck(ctx)
	if err := checkOwner(ctx, id, root, "."); err != nil {
		return nil, err
	}

	paths, err := listTree(id, root)
	if err != nil {
		return nil, err
	}
	assets := make([]manifest.Asset, 0, len(paths))
	for _, p := range paths {
		a, err := m.hashFile(ctx, id, root, p)
		if err != nil {
			return nil, err
		}
		assets = append(assets, a)
	}
	mf := &manifest.Manifest{Schema: manifest.SchemaVersion, AvatarID: id, Version: version, Assets: assets}
	if version == "" {
		sum, err := json.Marshal(mf.Assets)
		if err != nil {
			return nil, avatarErr(id, err)
		}
		h := sha256.Sum256(sum)
		mf.Version = "local-" + hex.EncodeToString(h[:6])
	}
	if err := mf.Validate(m.opts.MaxAssetBytes); err != nil {
		e := errs.From(err)
		return nil, importErr(id, e.Asset, "%s", e.Message)
	}
	raw, err := json.Marshal(mf)
	if err != nil {
		return nil, avatarErr(id, err)
	}

	// As for a load: the lease keeps the blobs this version shares with
	// others from being evicted to make room for it, until the Put.
	lease := m.st.Lease(digestsOf(mf)...)
	defer lease.Release()
	var need int64
	seen := map[string]bool{}
	for _, a := range assets {
		if !seen[a.SHA256] && !m.st.HasBlob(a.SHA256) {
			need += a.Size
		}
		seen[a.SHA256] = true
	}
	if need > 0 {
		evicted, err := m.st.EnsureSpaceKeeping(need, id)
		for _, e := range evicted {
			m.views.drop(e)
		}
		if err != nil {
			return nil, storeErr(id, "", err)
		}
	}
	clear(seen)
	for _, a := range assets {
		if seen[a.SHA256] {
			continue
		}
		seen[a.SHA256] = true
		if err := m.ingestFile(ctx, id, root, a); err != nil {
			return nil, err
		}
	}

	if err := m.cancelAndWait(ctx, []string{id}); err != nil {
		return nil, avatarErr(id, err)
	}
	now := m.now()
	av := &store.Avatar{ID: id, Version: mf.Version, Manifest: mf, RawManifest: raw, Source: SourceImport,
		State: store.StateReady, FetchedAt: now, LastUsed: now}
	if cur, ok := m.st.Get(id); ok {
		av.Pinned = cur.Pinned
	}
	if err := m.st.Put(av); err != nil {
		return nil, storeErr(id, "", err)
	}
	m.views.drop(id)
	m.stateEvent(id, apitype.StateReady, nil)
	return m.current(id, false)
}

// listTree returns the files under root, sorted, with their paths checked.
func listTree(id string, root *os.Root) ([]string, error) {
	var paths []string
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return importErr(id, p, "cannot read %s: %v", p, err)
		}
		if p == "." {
			return nil
		}
		mode := d.Type()
		if mode&fs.ModeSymlink != 0 {
			fi, err := root.Stat(p) // follows the link, but never out of root
			if err != nil {
				return importErr(id, p, "symbolic link %s leads out of the folder or nowhere", p)
			}
			if fi.IsDir() {
				return nil // not followed: it could loop
			}
			mode = fi.Mode().Type()
		}
		switch {
		case mode.IsDir():
			return nil
		case !mode.IsRegular():
			return importErr(id, p, "%s is not a regular file", p)
		}
		if err := manifest.ValidatePath(p); err != nil {
			return importErr(id, p, "%v", err)
		}
		if len(paths) >= manifest.MaxAssets {
			return importErr(id, "", "more than %d files", manifest.MaxAssets)
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, importErr(id, "", "the folder has no files")
	}
	sort.Strings(paths)
	return paths, nil
}

// hashFile measures and hashes one file.
func (m *Manager) hashFile(ctx context.Context, id string, root *os.Root, p string) (manifest.Asset, error) {
	f, err := openRegular(ctx, root, p)
	if err != nil {
		return manifest.Asset{}, openErr(id, p, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(ctxReader{ctx, f}, m.opts.MaxAssetBytes+1))
	if err != nil {
		return manifest.Asset{}, readErr(ctx, id, p, err)
	}
	if n > m.opts.MaxAssetBytes {
		return manifest.Asset{}, importErr(id, p, "%s is larger than %d bytes", p, m.opts.MaxAssetBytes)
	}
	return manifest.Asset{Path: p, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// ingestFile copies one file into the store and commits it; the store
// checks its size and hash again, so a file changed meanwhile fails.
func (m *Manager) ingestFile(ctx context.Context, id string, root *os.Root, a manifest.Asset) error {
	if m.st.HasBlob(a.SHA256) {
		return nil
	}
	w, err := m.st.Ingest(ctx, a.SHA256, a.Size)
	if err != nil {
		return storeErr(id, a.Path, err)
	}
	if m.st.HasBlob(a.SHA256) {
		_ = w.Abort()
		return nil
	}
	fail := func(err error) error {
		_ = w.Abort()
		return err
	}
	if w.Size() > 0 {
		if err := w.Truncate(); err != nil {
			return fail(storeErr(id, a.Path, err))
		}
	}
	f, err := openRegular(ctx, root, a.Path)
	if err != nil {
		return fail(openErr(id, a.Path, err))
	}
	defer f.Close()
	if _, err := io.Copy(w, io.LimitReader(ctxReader{ctx, f}, a.Size+1)); err != nil {
		return fail(readErr(ctx, id, a.Path, err))
	}
	if err := w.Commit(); err != nil {
		return fail(storeErr(id, a.Path, err))
	}
	return nil
}

func openRegular(ctx context.Context, root *os.Root, p string) (*os.File, error) {
	// O_NONBLOCK: a file swapped for a FIFO after the walk must not hang us.
	f, err := root.OpenFile(p, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	// Checked on the open file, so that a swap after the walk cannot pass.
	if err := ownedByCaller(ctx, fi); err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return f, nil
}

type ownerKey struct{}

// withOwnerCheck marks ctx when its caller must own what it imports: a
// caller that is neither root nor the daemon's own user.
func withOwnerCheck(ctx context.Context) context.Context {
	id, ok := caller.FromContext(ctx)
	if !ok || id.UID == 0 || id.UID == uint32(os.Getuid()) {
		return ctx
	}
	return context.WithValue(ctx, ownerKey{}, id.UID)
}

// errNotOwner refuses a file the caller does not own.
var errNotOwner = errors.New("not owned by the calling user")

func ownedByCaller(ctx context.Context, fi fs.FileInfo) error {
	uid, ok := ctx.Value(ownerKey{}).(uint32)
	if !ok {
		return nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Uid != uid {
		return errNotOwner
	}
	return nil
}

// openErr is the error for a file that could not be opened: forbidden for
// a file the caller does not own, a bad request otherwise.
func openErr(id, p string, err error) error {
	if errors.Is(err, errNotOwner) {
		return &errs.Error{Code: errs.Forbidden, Phase: errs.PhaseLocal, AvatarID: id, Asset: p,
			Message: "import reads files with the caller's rights: " + err.Error()}
	}
	return importErr(id, p, "%v", err)
}

// checkOwner refuses a folder the caller does not own.
func checkOwner(ctx context.Context, id string, root *os.Root, p string) error {
	fi, err := root.Stat(p)
	if err != nil {
		return importErr(id, "", "cannot read the folder: %v", err)
	}
	if err := ownedByCaller(ctx, fi); err != nil {
		return &errs.Error{Code: errs.Forbidden, Phase: errs.PhaseLocal, AvatarID: id,
			Message: "import reads files with the caller's rights: the folder is " + err.Error()}
	}
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func readErr(ctx context.Context, id, p string, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		e := cancelledErr(id)
		e.Err = err
		return e
	}
	var e *errs.Error
	if errors.As(err, &e) {
		return avatarErr(id, e)
	}
	return importErr(id, p, "cannot read %s: %v", p, err)
}

// importErr is a rejected import: the caller's tree is at fault.
func importErr(id, asset, format string, args ...any) *errs.Error {
	e := errs.New(errs.BadRequest, errs.PhaseLocal, "import: "+format, args...)
	e.AvatarID, e.Asset = id, asset
	return e
}
