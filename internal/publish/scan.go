package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/ctxio"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/printable"
)

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
	var e *errcode.Error
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
