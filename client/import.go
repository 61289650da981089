package client

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/manifest"
)

// ImportOptions are the query flags of POST /v1/avatars/{id}/import.
type ImportOptions struct {
	// Version names the version when the files have no top-level VERSION
	// file; "" = one the daemon derives from the files.
	Version string
	// Force replaces an avatar cached from the origin; without it the
	// daemon refuses (BadRequest, reason forceRequired).
	Force bool
}

func (o ImportOptions) query() string {
	q := url.Values{}
	if o.Version != "" {
		q.Set("version", o.Version)
	}
	if o.Force {
		q.Set("force", "true")
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Import caches the files under dir as the avatar id (the SDKs' derive):
// every regular file is an asset named by its '/'-separated path under
// dir. The files are read here, with the rights of the calling process,
// and streamed to the daemon as a tar stream (ImportTar); the daemon opens
// no path of the caller's. Symbolic links are followed within dir (a link
// to a directory is skipped); a link out of dir, a device, FIFO or socket,
// an invalid path or a file that cannot be read fails the import before
// anything is sent, with a badRequest *Error naming the file.
func (c *Client) Import(ctx context.Context, id, dir string, o ImportOptions) (*apitype.Avatar, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, readFileErr(id, "", dir, err)
	}
	defer root.Close()
	files, err := planImport(id, dir, root)
	if err != nil {
		return nil, err
	}
	size, err := tarSize(files)
	if err != nil {
		return nil, localFileErr(id, "", "%v", err)
	}
	pr, pw := io.Pipe()
	werr := make(chan error, 1)
	go func() {
		err := writeTar(ctx, pw, id, dir, root, files)
		pw.CloseWithError(err)
		werr <- err
	}()
	av, err := c.ImportTar(ctx, id, pr, size, o)
	pr.CloseWithError(errRequestDone) // stops the writer if the request ended first
	if ferr := <-werr; ferr != nil && !errors.Is(ferr, errRequestDone) && ctx.Err() == nil {
		return nil, ferr // the local cause (a file that changed) beats the broken request
	}
	return av, err
}

var errRequestDone = errors.New("the request ended")

// ImportTar caches the files of a tar stream of size bytes as the avatar
// id: POST /v1/avatars/{id}/import with Content-Type application/x-tar
// (docs/api.md says which entries the daemon takes).
func (c *Client) ImportTar(ctx context.Context, id string, r io.Reader, size int64, o ImportOptions) (*apitype.Avatar, error) {
	if size <= 0 {
		r = http.NoBody
		size = 0
	}
	p, err := avatarPath(id, "/import")
	if err != nil {
		return nil, err
	}
	req, err := c.newRequest(ctx, http.MethodPost, p+o.query(), r,
		http.Header{"Content-Type": {"application/x-tar"}})
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportErr(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return nil, decodeError(resp)
	}
	var av apitype.Avatar
	if err := json.NewDecoder(resp.Body).Decode(&av); err != nil {
		return nil, c.readErr(ctx, http.MethodPost, req.URL.Opaque, err)
	}
	return &av, nil
}

// importFile is one file to send: its asset path and the size it had when
// planned.
type importFile struct {
	path string
	size int64
}

// planImport lists the files under root, sorted, each opened once to
// prove it can be read, so that an unreadable file fails before a byte is
// sent.
func planImport(id, dir string, root *os.Root) ([]importFile, error) {
	var files []importFile
	err := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return readFileErr(id, p, filepath.Join(dir, p), err)
		}
		if p == "." {
			return nil
		}
		mode := d.Type()
		if mode&fs.ModeSymlink != 0 {
			fi, err := root.Stat(p) // follows the link, but never out of root
			if err != nil {
				return localFileErr(id, p, "symbolic link %s leads out of the folder or nowhere", filepath.Join(dir, p))
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
			return localFileErr(id, p, "%s is not a regular file", filepath.Join(dir, p))
		}
		if err := manifest.ValidatePath(p); err != nil {
			return localFileErr(id, p, "%v", err)
		}
		if len(files) >= manifest.MaxAssets {
			return localFileErr(id, "", "more than %d files", manifest.MaxAssets)
		}
		f, err := openRegular(root, p)
		if err != nil {
			return readFileErr(id, p, filepath.Join(dir, p), err)
		}
		fi, err := f.Stat()
		f.Close()
		if err != nil {
			return readFileErr(id, p, filepath.Join(dir, p), err)
		}
		files = append(files, importFile{path: p, size: fi.Size()})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, localFileErr(id, "", "%s has no files", dir)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].path < files[j].path })
	return files, nil
}

func header(f importFile) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: f.path, Size: f.size, Mode: 0o644, Format: tar.FormatPAX}
}

// tarSize is the exact length of the stream writeTar makes of files: each
// header as tar.Writer encodes it, the data padded to 512-byte blocks, and
// the two zero blocks that end the archive.
func tarSize(files []importFile) (int64, error) {
	var total int64
	for _, f := range files {
		var cw countWriter
		if err := tar.NewWriter(&cw).WriteHeader(header(f)); err != nil {
			return 0, fmt.Errorf("%s: %v", f.path, err)
		}
		total += cw.n + (f.size+511)/512*512
	}
	return total + 1024, nil
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// writeTar writes the files to w as planned. A file whose size changed
// since the plan fails: the stream's length is announced already.
func writeTar(ctx context.Context, w io.Writer, id, dir string, root *os.Root, files []importFile) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeFile(tw, id, dir, root, f); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeFile(tw *tar.Writer, id, dir string, root *os.Root, f importFile) error {
	full := filepath.Join(dir, f.path)
	in, err := openRegular(root, f.path)
	if err != nil {
		return readFileErr(id, f.path, full, err)
	}
	defer in.Close()
	if fi, err := in.Stat(); err != nil || fi.Size() != f.size {
		return localFileErr(id, f.path, "%s changed while it was being imported", full)
	}
	if err := tw.WriteHeader(header(f)); err != nil {
		return err
	}
	buf := make([]byte, 32<<10)
	var n int64
	for n < f.size {
		k, rerr := in.Read(buf[:min(int64(len(buf)), f.size-n)])
		if k > 0 {
			if _, err := tw.Write(buf[:k]); err != nil {
				return err // the stream's: the request reports its cause
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return readFileErr(id, f.path, full, rerr)
		}
	}
	if n < f.size {
		return localFileErr(id, f.path, "%s changed while it was being imported", full)
	}
	return nil
}

// openRegular opens a regular file under root; O_NONBLOCK so that a file
// swapped for a FIFO does not hang the import.
func openRegular(root *os.Root, p string) (*os.File, error) {
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
		return nil, errors.New("not a regular file")
	}
	return f, nil
}

// unwrapPath drops the operation and relative path of a *fs.PathError:
// the message names the full path already.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readFileErr is a file or folder this process could not read. The
// daemon would not read it either (it reads nothing of the caller's), so
// the hint says whose rights count.
func readFileErr(id, asset, path string, err error) *Error {
	e := localFileErr(id, asset, "cannot read %s: %v", path, unwrapPath(err))
	if errors.Is(err, fs.ErrPermission) {
		e.Hint = "import sends what you can read: run it as a user who can read " + path + ", or change its permissions"
	}
	return e
}

// localFileErr is an import refused on this side: a file the caller
// cannot read or send. It is the caller's input at fault: badRequest.
func localFileErr(id, asset, format string, args ...any) *Error {
	return &Error{Code: errcode.BadRequest, Phase: errcode.PhaseLocal, AvatarID: id, Asset: asset,
		Message: fmt.Sprintf("import: "+format, args...)}
}
