package manager

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/store"
)

func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestImport(t *testing.T) {
	e := newEnv(t, store.Options{}, Options{})
	dir := t.TempDir()
	files := files3("local")
	writeTree(t, dir, files)
	// A link to a file inside the tree is an asset; a link to a directory is skipped.
	if err := os.Symlink("model.splat", filepath.Join(dir, "alias.splat")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("anim", filepath.Join(dir, "anim-link")); err != nil {
		t.Fatal(err)
	}
	files["alias.splat"] = files["model.splat"]

	a, err := e.m.Import(context.Background(), "local", dir, "")
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

	// Deterministic: the same tree is the same version.
	again, err := e.m.Import(context.Background(), "local", dir, "")
	if err != nil || again.Version != a.Version {
		t.Errorf("re-import: %v, %v", again, err)
	}
	// An explicit version; Load serves an import without the origin.
	if v, err := e.m.Import(context.Background(), "local", dir, "mine-1"); err != nil || v.Version != "mine-1" {
		t.Fatalf("import with a version: %v, %v", v, err)
	}
	l := mustLoad(t, e.m, "local", LoadOptions{})
	if l.Version != "mine-1" || e.o.totalRequests() != 0 {
		t.Errorf("load of an import: version %s, %d requests", l.Version, e.o.totalRequests())
	}
	if s := e.m.Stats(); s.TotalEntries != 1 || s.Blobs != 3 {
		t.Errorf("stats %+v", s)
	}
}

func TestImportRejectsHostileTrees(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string][]byte{"secret": []byte("secret")})
	tests := []struct {
		name  string
		build func(t *testing.T, dir string)
	}{
		{"symlink out", func(t *testing.T, dir string) {
			if err := os.Symlink(filepath.Join(outside, "secret"), filepath.Join(dir, "s")); err != nil {
				t.Fatal(err)
			}
		}},
		{"relative symlink out", func(t *testing.T, dir string) {
			if err := os.Symlink("../../"+filepath.Base(outside)+"/secret", filepath.Join(dir, "s")); err != nil {
				t.Fatal(err)
			}
		}},
		{"dangling symlink", func(t *testing.T, dir string) {
			if err := os.Symlink("nowhere", filepath.Join(dir, "s")); err != nil {
				t.Fatal(err)
			}
		}},
		{"fifo", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"backslash", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string][]byte{`a\b`: []byte("x")})
		}},
		{"control character", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string][]byte{"a\nb": []byte("x")})
		}},
		{"too large", func(t *testing.T, dir string) {
			writeTree(t, dir, map[string][]byte{"big": make([]byte, 2000)})
		}},
		{"empty", func(t *testing.T, dir string) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, store.Options{}, Options{MaxAssetBytes: 1000})
			dir := t.TempDir()
			writeTree(t, dir, map[string][]byte{"ok.bin": []byte("fine")})
			if tt.name == "empty" {
				os.Remove(filepath.Join(dir, "ok.bin"))
			}
			tt.build(t, dir)
			_, err := e.m.Import(context.Background(), "x", dir, "")
			var ee *errs.Error
			if !errors.As(err, &ee) || ee.Code != errs.BadRequest || ee.AvatarID != "x" {
				t.Fatalf("Import: %v", err)
			}
			if s := e.m.Stats(); s.TotalEntries != 0 || s.Blobs != 0 {
				t.Errorf("a rejected import left %+v", s)
			}
		})
	}
	e := newEnv(t, store.Options{}, Options{})
	if _, err := e.m.Import(context.Background(), "../x", t.TempDir(), ""); !errors.Is(err, &errs.Error{Code: errs.AvatarIDUnrecognized, Reason: errs.ReasonInvalidID}) {
		t.Errorf("invalid ID: %v", err)
	}
	if _, err := e.m.Import(context.Background(), "x", filepath.Join(outside, "nope"), ""); !errors.Is(err, errs.BadRequest) {
		t.Errorf("missing folder: %v", err)
	}
}
