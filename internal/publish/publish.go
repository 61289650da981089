package publish

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/assetd/assetd/internal/ctxio"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/printable"
)

// VersionFile names an avatar folder's version file; it is not an asset.
const VersionFile = "VERSION"

// Options tune Publish.
type Options struct {
	// Version is the version of avatar folders that have no VERSION file.
	Version string
	// Key signs every manifest when set.
	Key    ed25519.PrivateKey
	Logger *slog.Logger
}

// Manifest states in a Result.
const (
	ManifestAdded     = "added"
	ManifestUpdated   = "updated"
	ManifestUnchanged = "unchanged"
)

// Result reports what a Publish changed in OUT.
type Result struct {
	Avatars      []AvatarResult `json:"avatars"`
	Skipped      []string       `json:"skipped,omitempty"` // top-level entries of SRC that are not avatars
	BlobsAdded   int            `json:"blobsAdded"`
	BytesAdded   int64          `json:"bytesAdded"`
	BlobsPresent int            `json:"blobsPresent"` // distinct blobs that were already in OUT
}

// AvatarResult is one avatar of a Result.
type AvatarResult struct {
	ID       string `json:"avatarId"`
	Version  string `json:"version"`
	Assets   int    `json:"assets"`
	Size     int64  `json:"size"`
	Manifest string `json:"manifest"` // ManifestAdded, ManifestUpdated or ManifestUnchanged
	KeyID    string `json:"keyId,omitempty"`
	// BlobsAdded counts the blobs written for this avatar; a blob shared
	// with an avatar published before it in the same run counts there.
	BlobsAdded int `json:"blobsAdded"`
}

// ManifestPath is where an origin tree keeps avatar id's manifest,
// relative to its root, '/'-separated.
func ManifestPath(id string) string { return "v1/avatars/" + id + "/manifest" }

// BlobPath is where an origin tree keeps the blob with this sha256.
func BlobPath(digest string) string { return "v1/blobs/sha256/" + digest }

// source is one asset found in SRC.
type source struct {
	asset manifest.Asset
	name  string // its name inside the SRC root
}

type avatar struct {
	id, version string
	files       []source
	doc         []byte // the manifest as it will be written
}

// Publish writes the avatars in src as an origin tree in out. Nothing is
// written unless every avatar in src is valid.
func Publish(ctx context.Context, src, out string, opts Options) (res *Result, err error) {
	defer func() {
		if err != nil {
			err = &printableError{err}
		}
	}()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkDirs(src, out); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(src)
	if err != nil {
		return nil, err
	}
	defer root.Close()

	ids, skipped, err := listAvatars(root)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s holds no avatar folders", src)
	}
	var avatars []*avatar
	for _, id := range ids {
		a, err := scan(ctx, root, id, opts.Version)
		if err != nil {
			return nil, err
		}
		if a.doc, err = buildManifest(a, opts.Key); err != nil {
			return nil, err
		}
		avatars = append(avatars, a)
	}

	res = &Result{Skipped: skipped}
	keyID := ""
	if opts.Key != nil {
		keyID = KeyID(opts.Key.Public().(ed25519.PublicKey))
	}
	for _, a := range avatars {
		res.Avatars = append(res.Avatars, AvatarResult{ID: a.id, Version: a.version, Assets: len(a.files), KeyID: keyID})
	}
	if err := writeBlobs(ctx, root, out, avatars, res, log); err != nil {
		return res, err
	}
	// Manifests last: every blob they name is already durable.
	for i, a := range avatars {
		state, err := putManifest(out, a, log)
		if err != nil {
			return res, err
		}
		res.Avatars[i].Manifest = state
		log.Info("published", "avatar", a.id, "version", a.version, "manifest", state,
			"assets", len(a.files), "blobsAdded", res.Avatars[i].BlobsAdded)
	}
	return res, nil
}

// writeBlobs puts every distinct file of avatars into out, counting in res
// (whose Avatars parallel avatars) what was added.
func writeBlobs(ctx context.Context, root *os.Root, out string, avatars []*avatar, res *Result, log *slog.Logger) error {
	seen := map[string]bool{}
	for i, a := range avatars {
		ar := &res.Avatars[i]
		for _, f := range a.files {
			ar.Size += f.asset.Size
			if seen[f.asset.SHA256] {
				continue
			}
			seen[f.asset.SHA256] = true
			added, err := putBlob(ctx, root, f, out)
			if err != nil {
				return err
			}
			if !added {
				res.BlobsPresent++
				continue
			}
			ar.BlobsAdded++
			res.BlobsAdded++
			res.BytesAdded += f.asset.Size
			log.Debug("blob added", "sha256", f.asset.SHA256, "size", f.asset.Size, "path", a.id+"/"+f.asset.Path)
		}
	}
	return nil
}

// checkDirs refuses an OUT inside SRC, which the next publish would read
// as an avatar folder.
func checkDirs(src, out string) error {
	as, err := filepath.Abs(src)
	if err != nil {
		return err
	}
	ao, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	if rel, err := filepath.Rel(as, ao); err == nil && (rel == "." || rel != ".." && !strings.HasPrefix(rel, "../")) {
		return fmt.Errorf("OUT %s must not be inside SRC %s", printable.Quote(out), printable.Quote(src))
	}
	return nil
}

func listAvatars(root *os.Root) (ids, skipped []string, err error) {
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, "."):
			skipped = append(skipped, name)
			continue
		case e.Type()&fs.ModeSymlink != 0:
			fi, err := root.Stat(name)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %s: symlink leads outside SRC or nowhere: %w", printable.Quote(root.Name()), printable.Quote(name), err)
			}
			if fi.IsDir() {
				return nil, nil, fmt.Errorf("%s: %s: a symlinked folder; symlinked folders are not followed", printable.Quote(root.Name()), printable.Quote(name))
			}
			skipped = append(skipped, name)
			continue
		case !e.IsDir():
			skipped = append(skipped, name)
			continue
		}
		if err := manifest.ValidateID(name); err != nil {
			return nil, nil, fmt.Errorf("%s: folder %q is not an avatar ID: %s", printable.Quote(root.Name()), name, plain(err))
		}
		ids = append(ids, name)
	}
	return ids, skipped, nil
}

// scan reads one avatar folder: its version and every asset's size and
// sha256.
func scan(ctx context.Context, root *os.Root, id, defVersion string) (*avatar, error) {
	a := &avatar{id: id}
	where := func(name string) string { return printable.Quote(filepath.Join(root.Name(), filepath.FromSlash(name))) }
	err := fs.WalkDir(root.FS(), id, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel := strings.TrimPrefix(name, id+"/")
		if rel == VersionFile {
			return nil
		}
		if err := manifest.ValidatePath(rel); err != nil {
			return fmt.Errorf("%s: not a valid asset path: %w", where(name), err)
		}
		switch t := d.Type(); {
		case t&fs.ModeSymlink != 0:
			fi, err := root.Stat(name)
			if err != nil {
				return fmt.Errorf("%s: symlink leads outside SRC or nowhere: %w", where(name), err)
			}
			if !fi.Mode().IsRegular() {
				return fmt.Errorf("%s: symlink to a %s; only regular files are published", where(name), kind(fi.Mode()))
			}
		case !t.IsRegular():
			return fmt.Errorf("%s: a %s; only regular files are published", where(name), kind(t))
		}
		// the size first: hashing a 5 GiB file only to refuse it wastes minutes
		fi, err := root.Stat(name)
		if err != nil {
			return fmt.Errorf("%s: %w", where(name), err)
		}
		if fi.Size() > manifest.DefaultMaxAssetBytes {
			return fmt.Errorf("%s: %d bytes, more than an asset may be (%d)", where(name), fi.Size(), int64(manifest.DefaultMaxAssetBytes))
		}
		size, digest, err := hashFile(ctx, root, name, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", where(name), err)
		}
		a.files = append(a.files, source{name: name, asset: manifest.Asset{Path: rel, Size: size, SHA256: digest}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(a.files) == 0 {
		return nil, fmt.Errorf("%s: avatar %s has no files", where(id), id)
	}
	sort.Slice(a.files, func(i, j int) bool { return a.files[i].asset.Path < a.files[j].asset.Path })

	v, err := root.ReadFile(path.Join(id, VersionFile))
	switch {
	case err == nil:
		a.version = strings.TrimSpace(string(v))
		if a.version == "" {
			return nil, fmt.Errorf("%s: empty", where(path.Join(id, VersionFile)))
		}
	case errors.Is(err, fs.ErrNotExist) && defVersion != "":
		a.version = defVersion
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: avatar %s has no %s file and no --version was given", where(id), id, VersionFile)
	default:
		return nil, fmt.Errorf("%s: %w", where(path.Join(id, VersionFile)), err)
	}
	return a, nil
}

// plain is the message of a manifest package error without its client
// code: a publish problem is the publisher's input, not a failed download.
func plain(err error) string {
	var e *errs.Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return err.Error()
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "folder"
	case m&fs.ModeNamedPipe != 0:
		return "named pipe"
	case m&fs.ModeSocket != 0:
		return "socket"
	case m&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// hashFile returns the size and sha256 of a regular file in root, copying
// its bytes to w as well when w is not nil.
func hashFile(ctx context.Context, root *os.Root, name string, w io.Writer) (int64, string, error) {
	f, err := root.Open(name)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, "", err
	}
	if !fi.Mode().IsRegular() {
		return 0, "", fmt.Errorf("a %s; only regular files are published", kind(fi.Mode()))
	}
	h := sha256.New()
	dst := io.Writer(h)
	if w != nil {
		dst = io.MultiWriter(h, w)
	}
	n, err := io.CopyN(dst, ctxio.Reader(ctx, f), manifest.DefaultMaxAssetBytes+1)
	switch {
	case err != nil && err != io.EOF:
		return 0, "", err
	case n > manifest.DefaultMaxAssetBytes:
		return 0, "", fmt.Errorf("grew past the most an asset may be (%d bytes) while it was read", int64(manifest.DefaultMaxAssetBytes))
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

func buildManifest(a *avatar, key ed25519.PrivateKey) ([]byte, error) {
	m := manifest.Manifest{Schema: manifest.SchemaVersion, AvatarID: a.id, Version: a.version,
		Assets: make([]manifest.Asset, 0, len(a.files))}
	for _, f := range a.files {
		m.Assets = append(m.Assets, f.asset)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var doc []byte
	if key != nil {
		doc, err = manifest.Sign(raw, KeyID(key.Public().(ed25519.PublicKey)), key)
	} else {
		doc, err = manifest.Canonical(raw)
	}
	if err != nil {
		return nil, fmt.Errorf("avatar %s: %w", a.id, err)
	}
	parsed, err := manifest.Decode(doc, a.id, 0)
	if err != nil {
		return nil, fmt.Errorf("avatar %s: %s", a.id, plain(err))
	}
	if key != nil {
		if err := parsed.Verify([]ed25519.PublicKey{key.Public().(ed25519.PublicKey)}); err != nil {
			return nil, fmt.Errorf("avatar %s: %s", a.id, plain(err))
		}
	}
	return doc, nil
}

// putBlob copies f into out's blob store unless a blob of the right size
// is already there. The copy is hashed again: a file that changed since
// the scan fails the publish rather than store bytes under a wrong name.
func putBlob(ctx context.Context, root *os.Root, f source, out string) (added bool, err error) {
	dst := filepath.Join(out, filepath.FromSlash(BlobPath(f.asset.SHA256)))
	if fi, err := os.Stat(dst); err == nil && fi.Mode().IsRegular() && fi.Size() == f.asset.Size {
		return false, nil
	}
	err = writeAtomic(dst, 0o644, func(w *os.File) error {
		size, digest, err := hashFile(ctx, root, f.name, w)
		if err != nil {
			return err
		}
		if size != f.asset.Size || digest != f.asset.SHA256 {
			return fmt.Errorf("%s changed while it was being published; publish again", printable.Quote(filepath.Join(root.Name(), f.name)))
		}
		return nil
	})
	return err == nil, err
}

func putManifest(out string, a *avatar, log *slog.Logger) (string, error) {
	dst := filepath.Join(out, filepath.FromSlash(ManifestPath(a.id)))
	old, err := os.ReadFile(dst)
	switch {
	case err == nil && bytes.Equal(old, a.doc):
		return ManifestUnchanged, nil
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return "", err
	}
	state := ManifestAdded
	var mtime time.Time
	if err == nil {
		state = ManifestUpdated
		if prev, perr := manifest.Parse(old, a.id, 0); perr == nil && prev.Version == a.version && !sameAssets(prev.Assets, a.files) {
			log.Warn("avatar's files changed but its version did not; caches see the change through the manifest's ETag",
				"avatar", a.id, "version", a.version)
		}
		fi, err := os.Stat(dst)
		if err != nil {
			return "", err
		}
		mtime = nextMtime(fi.ModTime(), time.Now())
	}
	err = writeAtomic(dst, 0o644, func(f *os.File) error {
		if _, err := f.Write(a.doc); err != nil {
			return err
		}
		if mtime.IsZero() {
			return nil
		}
		return os.Chtimes(f.Name(), mtime, mtime)
	})
	return state, err
}

// nextMtime is the mtime of a changed manifest that replaces one of mtime
// old: now, but always in a later whole second than old. Static servers
// derive their validators from the mtime in seconds and the size (nginx's
// ETag "<mtime hex>-<size hex>" and Last-Modified), and a changed
// manifest usually keeps its size (a new sha256 has as many digits), so
// a republish within the same second would otherwise be answered 304
// forever. Several republishes within one second push the mtime a few
// seconds ahead of the clock, which is harmless.
func nextMtime(old, now time.Time) time.Time {
	if floor := old.Truncate(time.Second).Add(time.Second); now.Before(floor) {
		return floor
	}
	return now
}

func sameAssets(prev []manifest.Asset, files []source) bool {
	if len(prev) != len(files) {
		return false
	}
	for i, f := range files {
		if prev[i] != f.asset {
			return false
		}
	}
	return true
}

// writeAtomic writes dst through a temporary file in its folder: fill,
// fsync, chmod, rename, fsync the folder. A crash leaves the old file or
// the new one, never a torn one.
func writeAtomic(dst string, mode os.FileMode, fill func(*os.File) error) (err error) {
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// printableError is an error of Publish whose text is escaped where it is
// not printable (a path an os error names), keeping what it wraps.
type printableError struct{ err error }

func (e *printableError) Error() string {
	s := e.err.Error()
	if printable.String(s) {
		return s
	}
	q := strconv.Quote(s)
	return strings.ReplaceAll(q[1:len(q)-1], `\"`, `"`)
}

func (e *printableError) Unwrap() error { return e.err }
