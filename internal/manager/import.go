package manager

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/ctxio"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// Size is the length of the tar stream in bytes (the request's
	// Content-Length): checked against the quota and the disk before a
	// byte is read.
	Size int64
	// Version names the version when the stream has no VERSION file; ""
	// = "local-" and a short hash of the manifest.
	Version string
	// Force replaces an avatar cached from the origin; without it such an
	// import is refused (badRequest, reason forceRequired) before a byte is
	// read.
	Force bool
}

// VersionFile is the stream's top-level file that holds the version, as in
// a folder assetd publish reads (publish.VersionFile): it is not an asset.
const VersionFile = "VERSION"

// maxImportEntries bounds the entries of an import's tar stream: the
// files, and as many directories.
const maxImportEntries = 2 * manifest.MaxAssets

// Import makes an avatar of the files a caller sends as a tar stream (the
// SDKs' derive): every regular file of the stream becomes an asset named
// by its path in the stream (a leading "./" dropped), except a top-level
// VERSION file, which holds the version as it does for assetd publish. Directory entries
// are allowed and ignored; links, devices and any other kind of entry,
// an invalid or repeated path, or a file over the size limit reject the
// whole stream. The daemon never opens a path of the caller's: the client
// reads the files with its own rights and sends their bytes.
//
// Blobs that only an import brought are committed private (store.
// ModePrivate: root, the daemon and its group may read them). The
// avatar's source is "import"; Load serves it from the cache without
// asking the origin while its files are intact.
func (m *Manager) Import(ctx context.Context, id string, r io.Reader, o ImportOptions) (*apitype.Avatar, error) {
	if err := validateID(id); err != nil {
		return nil, err
	}
	if o.Size < 0 {
		return nil, importErr(id, "", "the length of the tar stream must be known")
	}
	if err := m.checkReplace(id, o.Force); err != nil {
		return nil, err
	}
	if err := m.st.CheckRoom(o.Size); err != nil {
		return nil, storeErr(id, "", err)
	}
	in := &importStream{m: m, id: id, maxAsset: m.maxAssetBytes.Load(), spools: map[string]*store.Spool{}}
	defer in.removeSpools()
	if err := in.read(ctx, r); err != nil {
		return nil, err
	}
	mf, raw, err := in.manifest(o.Version)
	if err != nil {
		return nil, err
	}
	// As for a load: the lease keeps the blobs this version shares with
	// others from being evicted to make room for it, until the Put.
	lease := m.st.Lease(digestsOf(mf)...)
	defer lease.Release()
	if err := in.commit(ctx); err != nil {
		return nil, err
	}

	if err := m.cancelAndWait(ctx, []string{id}); err != nil {
		return nil, avatarErr(id, err)
	}
	// Again: a load may have brought the avatar from the origin meanwhile.
	if err := m.checkReplace(id, o.Force); err != nil {
		return nil, err
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
	m.log.Info("imported", "avatar", id, "version", mf.Version, "files", len(mf.Assets))
	return m.current(id, false)
}

// checkReplace refuses, unless force, to replace an avatar cached from the
// origin by an import: the origin's version would be lost until a load
// brings it again, and Load would serve the import instead.
func (m *Manager) checkReplace(id string, force bool) error {
	cur, ok := m.st.Get(id)
	if force || !ok || cur.Source == SourceImport {
		return nil
	}
	return &errcode.Error{Code: errcode.BadRequest, Phase: errcode.PhaseLocal, AvatarID: id, Reason: errcode.ReasonForceRequired,
		Message: fmt.Sprintf("import: %s is cached from the origin (version %s); importing would replace it: repeat with --force (API: ?force=true)", id, cur.Version),
		Hint:    "run: assetd import --force " + id + " DIR, to replace the origin's version with your files"}
}

// importStream is one import's tar stream being read into spools.
type importStream struct {
	m        *Manager
	id       string
	maxAsset int64  // fetch.max_asset_bytes when the import began
	version  string // from the VERSION file, trimmed
	assets   []manifest.Asset
	spools   map[string]*store.Spool // by digest: one per distinct file content
}

func (in *importStream) removeSpools() {
	for _, sp := range in.spools {
		_ = sp.Remove()
	}
}

// manifest is the stream's manifest and its JSON. Its version is the
// VERSION file's, else asked, else one made of the files' digests.
func (in *importStream) manifest(asked string) (*manifest.Manifest, []byte, error) {
	id := in.id
	version := asked
	if in.version != "" {
		if version != "" && version != in.version {
			return nil, nil, importErr(id, VersionFile, "the %s file says %q but the version %q was asked for: drop one", VersionFile, in.version, version)
		}
		version = in.version
	}
	mf := &manifest.Manifest{Schema: manifest.SchemaVersion, AvatarID: id, Version: version, Assets: in.assets}
	if mf.Version == "" {
		sum, err := json.Marshal(mf.Assets)
		if err != nil {
			return nil, nil, avatarErr(id, err)
		}
		h := sha256.Sum256(sum)
		mf.Version = "local-" + hex.EncodeToString(h[:6])
	}
	if err := mf.Validate(in.maxAsset); err != nil {
		e := errs.From(err)
		return nil, nil, importErr(id, e.Asset, "%s", e.Message)
	}
	raw, err := json.Marshal(mf)
	if err != nil {
		return nil, nil, avatarErr(id, err)
	}
	return mf, raw, nil
}

// commit makes room for the spooled files the store lacks and commits
// every spool into the store, private.
func (in *importStream) commit(ctx context.Context) error {
	var need int64
	for d, sp := range in.spools {
		if !in.m.st.HasBlob(d) {
			need += sp.Size()
		}
	}
	if err := in.m.makeRoom(need, in.id); err != nil {
		return err
	}
	for d, sp := range in.spools {
		delete(in.spools, d)
		if err := in.m.st.CommitSpool(ctx, sp, true); err != nil {
			return storeErr(in.id, "", err)
		}
	}
	return nil
}

// read spools every file of the stream and lists its assets, sorted.
func (in *importStream) read(ctx context.Context, r io.Reader) error {
	id := in.id
	tr := tar.NewReader(ctxio.Reader(ctx, r))
	seen := map[string]bool{}
	for entries := 0; ; entries++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return in.readErr(ctx, "", fmt.Errorf("not a valid tar stream: %w", err))
		}
		if entries >= maxImportEntries {
			return importErr(id, "", "more than %d entries in the tar stream", maxImportEntries)
		}
		name := strings.TrimPrefix(hdr.Name, "./")
		if hdr.Typeflag == tar.TypeDir {
			name = strings.TrimSuffix(name, "/")
			if name == "" || name == "." {
				continue
			}
			if err := manifest.ValidatePath(name); err != nil {
				return importErr(id, name, "%v", err)
			}
			continue
		}
		if err := manifest.ValidatePath(name); err != nil {
			return importErr(id, name, "%v", err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return importErr(id, name, "%s is %s; only regular files are imported", name, entryKind(hdr.Typeflag))
		}
		if seen[name] {
			return importErr(id, name, "%s appears twice in the tar stream", name)
		}
		seen[name] = true
		if name == VersionFile {
			if err := in.readVersion(ctx, tr, hdr.Size); err != nil {
				return err
			}
			continue
		}
		if hdr.Size > in.maxAsset {
			return importErr(id, name, "%s is %d bytes, more than fetch.max_asset_bytes (%d)", name, hdr.Size, in.maxAsset)
		}
		if len(in.assets) >= manifest.MaxAssets {
			return importErr(id, "", "more than %d files", manifest.MaxAssets)
		}
		a, err := in.spool(ctx, tr, name, hdr.Size)
		if err != nil {
			return err
		}
		in.assets = append(in.assets, a)
	}
	if len(in.assets) == 0 {
		return importErr(id, "", "the tar stream has no files")
	}
	sort.Slice(in.assets, func(i, j int) bool { return in.assets[i].Path < in.assets[j].Path })
	return nil
}

// readVersion reads the VERSION file: its content, trimmed, is the
// version, as assetd publish reads it.
func (in *importStream) readVersion(ctx context.Context, r io.Reader, size int64) error {
	const limit = 4 << 10 // room for spaces around a version of MaxVersionBytes
	if size > limit {
		return importErr(in.id, VersionFile, "%s is %d bytes; a version is at most %d", VersionFile, size, manifest.MaxVersionBytes)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return in.readErr(ctx, VersionFile, err)
	}
	in.version = strings.TrimSpace(string(b))
	if in.version == "" {
		return importErr(in.id, VersionFile, "%s is empty", VersionFile)
	}
	return nil
}

// spool writes one file to a spool and keeps it, unless a spool of the
// same content is kept already.
func (in *importStream) spool(ctx context.Context, r io.Reader, name string, size int64) (manifest.Asset, error) {
	sp, err := in.m.st.Spool(size)
	if err != nil {
		return manifest.Asset{}, storeErr(in.id, name, err)
	}
	n, err := io.Copy(sp, r)
	if err == nil && n != size {
		err = fmt.Errorf("%s: %d bytes of %d", name, n, size)
	}
	if err != nil {
		_ = sp.Remove()
		return manifest.Asset{}, in.readErr(ctx, name, err)
	}
	d := sp.Digest()
	if _, ok := in.spools[d]; ok {
		if err := sp.Remove(); err != nil {
			return manifest.Asset{}, storeErr(in.id, name, err)
		}
	} else {
		in.spools[d] = sp
	}
	return manifest.Asset{Path: name, Size: size, SHA256: d}, nil
}

func (in *importStream) readErr(ctx context.Context, name string, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		e := cancelledErr(in.id)
		e.Err = err
		return e
	}
	var e *errcode.Error
	if errors.As(err, &e) {
		return avatarErr(in.id, e)
	}
	return importErr(in.id, name, "%v", err)
}

func entryKind(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "a symbolic link"
	case tar.TypeLink:
		return "a hard link"
	case tar.TypeChar, tar.TypeBlock:
		return "a device"
	case tar.TypeFifo:
		return "a named pipe"
	}
	return fmt.Sprintf("an entry of type %q", t)
}

// importErr is a rejected import: the caller's files are at fault.
func importErr(id, asset, format string, args ...any) *errcode.Error {
	e := errs.New(errcode.BadRequest, errcode.PhaseLocal, "import: "+format, args...)
	e.AvatarID, e.Asset = id, asset
	return e
}
