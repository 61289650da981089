package manager

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/store"
)

// entry is one tar entry of a test stream.
type entry struct {
	hdr  tar.Header
	data []byte
}

func regular(name string, data []byte) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Size: int64(len(data)), Mode: 0o644}, data: data}
}

// tarOf is the tar stream of entries, in order.
func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// tarFiles is the tar stream of files, sorted by path.
func tarFiles(t testing.TB, files map[string][]byte) []byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	es := make([]entry, len(names))
	for i, n := range names {
		es[i] = regular(n, files[n])
	}
	return tarOf(t, es...)
}

func importBytes(m *Manager, id string, stream []byte, version string) (*apitype.Avatar, error) {
	return m.Import(context.Background(), id, bytes.NewReader(stream), ImportOptions{Size: int64(len(stream)), Version: version})
}

func TestImport(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	files := files3("local")
	// "./" prefixes and directory entries, as `tar -C DIR -cf - .` makes them.
	stream := tarOf(t,
		entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}},
		entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./anim/", Mode: 0o755}},
		regular("./anim/talk.bin", files["anim/talk.bin"]),
		regular("./model.splat", files["model.splat"]),
		regular("meta.json", files["meta.json"]),
		regular("alias.splat", files["model.splat"]))
	files["alias.splat"] = files["model.splat"]

	a, err := importBytes(e.m, "local", stream, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.Version, "local-") || len(a.Version) != len("local-")+12 {
		t.Errorf("version %q", a.Version)
	}
	if a.Source != SourceImport || a.State != apitype.StateReady || a.SizeBytes != totalSize(files) {
		t.Errorf("avatar %+v", a)
	}
	checkFiles(t, a, files)
	// Only root, the daemon and its group may read what an import brought.
	for _, as := range a.Assets {
		fi, err := os.Stat(as.LocalPath)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != store.ModePrivate || fi.Sys().(*syscall.Stat_t).Gid != uint32(os.Getegid()) {
			t.Errorf("%s: mode %v gid %d, want %v and the daemon's group %d", as.Path, fi.Mode().Perm(),
				fi.Sys().(*syscall.Stat_t).Gid, store.ModePrivate, os.Getegid())
		}
	}

	// Deterministic: the same files are the same version.
	again, err := importBytes(e.m, "local", tarFiles(t, files), "")
	if err != nil || again.Version != a.Version {
		t.Errorf("re-import: %v, %v", again, err)
	}
	// An explicit version; Load serves an import without the origin.
	if v, err := importBytes(e.m, "local", stream, "mine-1"); err != nil || v.Version != "mine-1" {
		t.Fatalf("import with a version: %v, %v", v, err)
	}
	l := mustLoad(t, e.m, "local", LoadOptions{})
	if l.Version != "mine-1" || e.o.Requests() != 0 {
		t.Errorf("load of an import: version %s, %d requests", l.Version, e.o.Requests())
	}
	if s := e.m.Stats(); s.TotalEntries != 1 || s.Blobs != 3 {
		t.Errorf("stats %+v", s)
	}
	if ents, _ := os.ReadDir(e.st.Dir() + "/tmp"); len(ents) != 0 {
		t.Errorf("tmp/ keeps %d spools", len(ents))
	}
}

// TestOriginSharesAnImportedBlob: a blob an import brought is private
// until the origin serves the same bytes; then it is 0444 like every
// origin blob.
func TestOriginSharesAnImportedBlob(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	shared := randomBytes("shared", 8<<10)
	if _, err := importBytes(e.m, "mine", tarFiles(t, map[string][]byte{"x.bin": shared}), ""); err != nil {
		t.Fatal(err)
	}
	path := e.st.BlobPath(digestOf(shared))
	mode := func() os.FileMode {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode().Perm()
	}
	if got := mode(); got != store.ModePrivate {
		t.Fatalf("imported blob mode %v", got)
	}
	files := files3("rohan")
	files["same.bin"] = shared
	e.o.Publish(avatarOf("rohan", "v1", files))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	if n := e.o.BlobGets(digestOf(shared)); n != 0 {
		t.Errorf("the origin was asked for a blob the import brought (%d times)", n)
	}
	if got := mode(); got != store.ModeShared {
		t.Errorf("after the origin load the blob is %v, want %v", got, store.ModeShared)
	}
}

func TestImportRejectsHostileStreams(t *testing.T) {
	ok := regular("ok.bin", []byte("fine"))
	link := func(typ byte, name, target string) entry {
		return entry{hdr: tar.Header{Typeflag: typ, Name: name, Linkname: target, Mode: 0o777}}
	}
	tests := []struct {
		name   string
		stream func(t *testing.T) []byte
		want   string
	}{
		{"symlink", func(t *testing.T) []byte { return tarOf(t, ok, link(tar.TypeSymlink, "s", "/etc/shadow")) }, "symbolic link"},
		{"hard link", func(t *testing.T) []byte { return tarOf(t, ok, link(tar.TypeLink, "h", "ok.bin")) }, "hard link"},
		{"device", func(t *testing.T) []byte {
			return tarOf(t, ok, entry{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "null", Devmajor: 1, Devminor: 3}})
		}, "device"},
		{"fifo", func(t *testing.T) []byte {
			return tarOf(t, ok, entry{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "p"}})
		}, "named pipe"},
		{"dot dot", func(t *testing.T) []byte { return tarOf(t, ok, regular("a/../../x", []byte("x"))) }, `".." segment`},
		{"absolute", func(t *testing.T) []byte { return tarOf(t, ok, regular("/etc/x", []byte("x"))) }, "absolute"},
		{"dot dot directory", func(t *testing.T) []byte {
			return tarOf(t, ok, entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "../d/"}})
		}, `".." segment`},
		{"backslash", func(t *testing.T) []byte { return tarOf(t, ok, regular(`a\b`, []byte("x"))) }, "backslash"},
		{"control character", func(t *testing.T) []byte { return tarOf(t, ok, regular("a\nb", []byte("x"))) }, "control character"},
		{"twice", func(t *testing.T) []byte { return tarOf(t, ok, regular("./ok.bin", []byte("other"))) }, "appears twice"},
		{"too large", func(t *testing.T) []byte { return tarOf(t, ok, regular("big", make([]byte, 2000))) }, "max_asset_bytes"},
		{"empty", func(t *testing.T) []byte { return tarOf(t) }, "no files"},
		{"not tar", func(t *testing.T) []byte { return bytes.Repeat([]byte("not a tar stream "), 64) }, "not a valid tar stream"},
		{"truncated", func(t *testing.T) []byte {
			s := tarOf(t, ok, regular("b", make([]byte, 900)))
			return s[:512+512+512+300]
		}, "import"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, store.Options{}, Options{MaxAssetBytes: 1000})
			_, err := importBytes(e.m, "x", tt.stream(t), "")
			var ee *errcode.Error
			if !errors.As(err, &ee) || ee.Code != errcode.BadRequest || ee.AvatarID != "x" || !strings.Contains(ee.Message, tt.want) {
				t.Fatalf("Import: %v; want badRequest saying %q", err, tt.want)
			}
			if s := e.m.Stats(); s.TotalEntries != 0 || s.Blobs != 0 {
				t.Errorf("a rejected import left %+v", s)
			}
			if ents, _ := os.ReadDir(e.st.Dir() + "/tmp"); len(ents) != 0 {
				t.Errorf("a rejected import left %d spools", len(ents))
			}
		})
	}
	e := newEnv(t, store.Options{}, Options{})
	if _, err := importBytes(e.m, "../x", tarOf(t, ok), ""); !errors.Is(err, &errcode.Error{Code: errcode.AvatarIDUnrecognized, Reason: errcode.ReasonInvalidID}) {
		t.Errorf("invalid ID: %v", err)
	}
}

// TestImportQuotaBeforeAnyByte: a stream longer than the quota is refused
// from its announced length, without reading it.
func TestImportQuotaBeforeAnyByte(t *testing.T) {
	e := newEnv(t, store.Options{MaxBytes: 64 << 10}, Options{})
	r := &countingReader{r: bytes.NewReader(tarFiles(t, files3("big")))}
	_, err := e.m.Import(context.Background(), "big", r, ImportOptions{Size: 200 << 10})
	if !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonInsufficientStorage}) ||
		!strings.Contains(err.Error(), "store.max_bytes") {
		t.Fatalf("Import over the quota: %v", err)
	}
	if r.n != 0 {
		t.Errorf("%d bytes of the stream were read before the refusal", r.n)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// TestImportVersionFile: a top-level VERSION file is the version, as for
// assetd publish, and not an asset; a VERSION deeper down is an asset; a
// version asked for must agree with the file.
func TestImportVersionFile(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	files := map[string][]byte{"model.splat": []byte("splat"), "docs/VERSION": []byte("not the version")}
	stream := tarOf(t, regular("./VERSION", []byte("  2026-12-04.1\n")), regular("model.splat", files["model.splat"]),
		regular("docs/VERSION", files["docs/VERSION"]))
	a, err := importBytes(e.m, "v", stream, "")
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != "2026-12-04.1" {
		t.Errorf("version %q, want the VERSION file's", a.Version)
	}
	checkFiles(t, a, files)
	if a, err := importBytes(e.m, "v", stream, "2026-12-04.1"); err != nil || a.Version != "2026-12-04.1" {
		t.Errorf("the same version asked for: %v, %v", a, err)
	}
	_, err = importBytes(e.m, "v", stream, "other")
	if !errors.Is(err, errcode.BadRequest) || !strings.Contains(err.Error(), `the VERSION file says "2026-12-04.1" but the version "other" was asked for`) {
		t.Errorf("a version that disagrees with VERSION: %v", err)
	}
	_, err = importBytes(e.m, "v", tarOf(t, regular("VERSION", []byte(" \n")), regular("a", []byte("a"))), "")
	if !errors.Is(err, errcode.BadRequest) || !strings.Contains(err.Error(), "VERSION is empty") {
		t.Errorf("an empty VERSION: %v", err)
	}
}

// TestImportOverOriginNeedsForce: an import does not replace an avatar
// cached from the origin unless forced, and refuses before reading the
// stream; a previous import is replaced freely.
func TestImportOverOriginNeedsForce(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	e.o.Publish(avatarOf("rohan", "v1", files3("rohan")))
	mustLoad(t, e.m, "rohan", LoadOptions{})
	stream := tarFiles(t, map[string][]byte{"mine.bin": []byte("mine")})
	r := &countingReader{r: bytes.NewReader(stream)}
	_, err := e.m.Import(context.Background(), "rohan", r, ImportOptions{Size: int64(len(stream))})
	if !errors.Is(err, &errcode.Error{Code: errcode.BadRequest, Reason: errcode.ReasonForceRequired}) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("import over an origin avatar: %v", err)
	}
	if errs.HTTPStatus(err) != 409 || errs.ExitCode(err) != errs.ExitUsage {
		t.Errorf("status %d, exit %d; want 409 and %d", errs.HTTPStatus(err), errs.ExitCode(err), errs.ExitUsage)
	}
	if r.n != 0 {
		t.Errorf("%d bytes read before the refusal", r.n)
	}
	if a, err := e.m.Retrieve("rohan"); err != nil || a.Source != SourceOrigin || a.Version != "v1" {
		t.Fatalf("the origin's avatar after a refused import: %+v, %v", a, err)
	}
	a, err := e.m.Import(context.Background(), "rohan", bytes.NewReader(stream), ImportOptions{Size: int64(len(stream)), Force: true})
	if err != nil || a.Source != SourceImport {
		t.Fatalf("forced import: %+v, %v", a, err)
	}
	if _, err := importBytes(e.m, "rohan", tarFiles(t, map[string][]byte{"other.bin": []byte("x")}), ""); err != nil {
		t.Errorf("an import over an import: %v", err)
	}
}

// TestImportFollowsMaxAssetBytes: a reload's fetch.max_asset_bytes
// (SetMaxAssetBytes) bounds the next import's files.
func TestImportFollowsMaxAssetBytes(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	stream := tarFiles(t, map[string][]byte{"f.bin": make([]byte, 3000)})
	e.m.SetMaxAssetBytes(2000)
	if _, err := importBytes(e.m, "x", stream, ""); !errors.Is(err, errcode.BadRequest) || !strings.Contains(err.Error(), "max_asset_bytes (2000)") {
		t.Errorf("a 3000-byte file under a 2000-byte limit: %v", err)
	}
	e.m.SetMaxAssetBytes(4000)
	if _, err := importBytes(e.m, "x", stream, ""); err != nil {
		t.Errorf("under a 4000-byte limit: %v", err)
	}
}
