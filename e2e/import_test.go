package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/assetd/assetd/apitype"
)

// TestImportCLI: `assetd import` through the real binary and daemon. A
// VERSION file at the top of DIR is the version, not an asset, as for
// `assetd publish`; an import over an avatar cached from the origin is
// refused with exit 2 naming --force and changes nothing; with --force it
// replaces it, and its files are 0440 in the daemon's group.
func TestImportCLI(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 16<<10)
	o := newOrigin(t, a)
	e := newEnv(t, o)
	p := e.Start()
	defer p.Stop()
	cli := func(args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--socket", e.Sock}, args...)...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	}
	get := func(id string) apitype.Avatar {
		t.Helper()
		code, out := cli("--json", "get", id)
		var av apitype.Avatar
		if code != 0 || json.Unmarshal([]byte(out), &av) != nil {
			t.Fatalf("get %s: exit %d\n%s", id, code, out)
		}
		return av
	}
	if code, out := cli("preload", "rohan"); code != 0 {
		t.Fatalf("preload: exit %d\n%s", code, out)
	}
	dir := filepath.Join(e.Dir, "mine")
	for p, data := range map[string]string{"VERSION": "2026-12-04.7\n", "model.splat": "my splat", "anim/VERSION": "an asset"} {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	code, out := cli("import", "rohan", dir)
	if code != 2 || !strings.Contains(out, "--force") {
		t.Errorf("import over the origin's rohan: exit %d, want 2 naming --force\n%s", code, out)
	}
	if av := get("rohan"); av.Source != "origin" {
		t.Errorf("after the refused import rohan's source is %q", av.Source)
	}
	if code, out := cli("import", "rohan", dir, "--force"); code != 0 || !strings.Contains(out, "version 2026-12-04.7, 2 files") {
		t.Fatalf("import --force: exit %d\n%s", code, out)
	}
	av := get("rohan")
	var paths []string
	for _, as := range av.Assets {
		paths = append(paths, as.Path)
		fi, err := os.Stat(as.LocalPath)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o440 {
			t.Errorf("%s is stored %v, want 0440", as.Path, fi.Mode().Perm())
		}
	}
	if av.Source != "import" || av.Version != "2026-12-04.7" || strings.Join(paths, " ") != "anim/VERSION model.splat" {
		t.Errorf("imported rohan: source %s, version %s, assets %q; want import, 2026-12-04.7, [anim/VERSION model.splat]", av.Source, av.Version, paths)
	}
	// An import over an import needs no --force.
	if code, out := cli("import", "rohan", dir); code != 0 {
		t.Errorf("import over an import: exit %d\n%s", code, out)
	}
}
