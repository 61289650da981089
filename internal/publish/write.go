package publish

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/printable"
)

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
