package client

import (
	"archive/tar"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
)

// TestImportStreamsTheFolder: Import sends a tar stream of exactly the
// announced length (long names take PAX headers), every regular file once,
// links within the folder followed, and a file that cannot be read fails
// before the request.
func TestImportStreamsTheFolder(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("d", 120) + "/" + strings.Repeat("f", 130) + ".bin"
	files := map[string]string{"a.bin": "A", "sub/b.bin": strings.Repeat("B", 1000), long: "L", "empty": ""}
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.bin", filepath.Join(dir, "alias.bin")); err != nil {
		t.Fatal(err)
	}
	files["alias.bin"] = "A"
	var requests int
	got := map[string]string{}
	var problem error
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		requests++
		if r.Header.Get("Content-Type") != "application/x-tar" || r.URL.RawQuery != "version=v1" {
			problem = errors.New("wrong Content-Type or query: " + r.Header.Get("Content-Type") + " " + r.URL.RawQuery)
		}
		body, err := io.ReadAll(r.Body) // the server checks it is Content-Length long
		if err != nil || int64(len(body)) != r.ContentLength {
			problem = errors.New("the body is not the announced length")
		}
		tr := tar.NewReader(strings.NewReader(string(body)))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				problem = err
				break
			}
			b, _ := io.ReadAll(tr)
			got[h.Name] = string(b)
		}
		json.NewEncoder(w).Encode(apitype.Avatar{AvatarID: "x"})
	})
	if _, err := c.Import(ctx(t), "x", dir, ImportOptions{Version: "v1"}); err != nil {
		t.Fatal(err)
	}
	if problem != nil {
		t.Fatal(problem)
	}
	if len(got) != len(files) {
		t.Errorf("sent %d files, want %d", len(got), len(files))
	}
	for p, data := range files {
		if got[p] != data {
			t.Errorf("%s: sent %q, want %q", p, truncate(got[p]), truncate(data))
		}
	}

	// Failures on this side: nothing is sent.
	if err := os.Symlink("/etc/hostname", filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	_, err := c.Import(ctx(t), "x", dir, ImportOptions{})
	if !errors.Is(err, errcode.BadRequest) || !strings.Contains(err.Error(), "leads out of the folder") {
		t.Errorf("a link out of the folder: %v", err)
	}
	_, err = c.Import(ctx(t), "x", filepath.Join(dir, "nope"), ImportOptions{})
	if !errors.Is(err, errcode.BadRequest) {
		t.Errorf("a missing folder: %v", err)
	}
	if requests != 1 {
		t.Errorf("%d requests, want 1 (failures here send nothing)", requests)
	}
}

func truncate(s string) string {
	if len(s) > 20 {
		return s[:20] + "..."
	}
	return s
}
