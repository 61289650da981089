package e2e

import (
	"os"
	"strings"
	"testing"

	"github.com/assetd/assetd/internal/testkit"
)

// TestCLISmallOnes: `assetd --version` prints what `assetd version` does;
// `get --files` prints asset path TAB local path, `--paths` one path a
// line; the help of commands that never reach the daemon does not offer
// --socket; `samples`, which the demo runs, is listed in help.
func TestCLISmallOnes(t *testing.T) {
	e := testkit.NewEnv(t, waitLimit)
	out, errOut, code := e.CLI("--version")
	v, _, _ := e.CLI("version")
	if code != 0 || !strings.HasPrefix(out, "assetd ") || out != v {
		t.Errorf("--version: exit %d, %q (stderr %q), want %q", code, out, errOut, v)
	}

	for _, cmd := range []string{"publish", "keygen", "origin", "samples"} {
		if out, _, code := e.CLI(cmd, "--help"); code != 0 || strings.Contains(out, "--socket") {
			t.Errorf("%s --help (exit %d) offers --socket:\n%s", cmd, code, out)
		}
	}
	if out, _, _ := e.CLI("ls", "--help"); !strings.Contains(out, "--socket") {
		t.Errorf("ls --help does not offer --socket:\n%s", out)
	}
	if out, _, _ := e.CLI("--help"); !strings.Contains(out, "\n  samples ") {
		t.Errorf("help does not list samples:\n%s", out)
	}

	rohan := testkit.RandomAvatar(t, "rohan", 10<<10, 20<<10)
	o := testkit.NewOrigin(t, rohan)
	e.WriteConfig(testkit.Config{OriginURL: o.URL()})
	p := e.Start()
	defer p.Stop()
	if out, errOut, code := e.CLI("preload", "rohan"); code != 0 {
		t.Fatalf("preload: exit %d\n%s%s", code, out, errOut)
	}
	files, _, code := e.CLI("get", "rohan", "--files")
	paths, _, _ := e.CLI("get", "rohan", "--paths")
	if code != 0 {
		t.Fatalf("get --files: exit %d", code)
	}
	fl, pl := strings.Split(strings.TrimSuffix(files, "\n"), "\n"), strings.Split(strings.TrimSuffix(paths, "\n"), "\n")
	if len(fl) != len(rohan.Assets) || len(pl) != len(rohan.Assets) {
		t.Fatalf("get --files:\n%s\nget --paths:\n%s", files, paths)
	}
	for i, l := range fl {
		asset, local, ok := strings.Cut(l, "\t")
		if !ok || asset != rohan.Assets[i].Path || local != pl[i] {
			t.Errorf("--files line %q, want %q TAB %q", l, rohan.Assets[i].Path, pl[i])
		}
		if _, err := os.Stat(local); err != nil {
			t.Errorf("--files names %q: %v", local, err)
		}
	}
	if _, _, code := e.CLI("get", "rohan", "--files", "--paths"); code != 2 {
		t.Errorf("get --files --paths: exit %d, want 2", code)
	}
}
