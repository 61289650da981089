package manager

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// FuzzImportStream: whatever a caller sends as an import's tar stream,
// Import answers an avatar whose every asset is a valid path and a
// regular file of the stream's, or an error of the taxonomy; it never
// panics and never leaves a spool behind.
func FuzzImportStream(f *testing.F) {
	seed := func(entries ...entry) []byte { return tarOf(f, entries...) }
	f.Add(seed(regular("a.bin", []byte("a")), regular("VERSION", []byte("1\n"))))
	f.Add(seed(entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./"}}, regular("./d/x", []byte("xx"))))
	f.Add(seed(regular("../x", []byte("x"))))
	f.Add(seed(entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: "s", Linkname: "/etc/shadow"}}))
	f.Add(seed(regular("big", make([]byte, 3000))))
	f.Add([]byte("not tar"))
	dir := f.TempDir()
	st := openStore(f, dir, store.Options{MaxBytes: 1 << 20})
	m := New(st, nil, Options{Logger: quietLogger(), MaxAssetBytes: 2048})
	f.Cleanup(func() { m.Close() })
	f.Fuzz(func(t *testing.T, stream []byte) {
		a, err := m.Import(context.Background(), "fuzz", bytes.NewReader(stream), ImportOptions{Size: int64(len(stream))})
		if err != nil {
			if e := errs.From(err); e.Code == errcode.Internal {
				t.Fatalf("internal error for a caller's stream: %v", err)
			}
		} else {
			for _, as := range a.Assets {
				if manifest.ValidatePath(as.Path) != nil || as.Path == VersionFile || as.Size > 2048 {
					t.Fatalf("imported asset %+v", as)
				}
				if fi, err := os.Stat(as.LocalPath); err != nil || !fi.Mode().IsRegular() || fi.Size() != as.Size {
					t.Fatalf("asset %s on disk: %v, %v", as.Path, fi, err)
				}
			}
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(ents) != 0 {
			t.Fatalf("%d spools left behind", len(ents))
		}
	})
}
