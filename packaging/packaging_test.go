package packaging

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var epoch = time.Date(2026, 11, 29, 5, 16, 32, 0, time.UTC)

func TestDebVersion(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v2", "2"},
		{"v1.2.3-rc.1", "1.2.3~rc.1"},
		{"v1.2.3-4-gabcdef0", "1.2.3+git4.abcdef0"},
		{"v1.2.3-rc1-4-gabcdef0-dirty", "1.2.3~rc1+git4.abcdef0+dirty"},
		{"989b7cd", "0.0~git20261129.051632.989b7cd"},
		{"1234567", "0.0~git20261129.051632.1234567"},
		{"989b7cd-dirty", "0.0~git20261129.051632.989b7cd+dirty"},
	} {
		got, err := DebVersion(tt.in, epoch)
		if err != nil || got != tt.want {
			t.Errorf("DebVersion(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "dev", "release-1", "v1.2.3 ", "1.2.3-foo"} {
		if got, err := DebVersion(bad, epoch); err == nil {
			t.Errorf("DebVersion(%q) = %q, want an error", bad, got)
		}
	}
	// dpkg agrees on the order: rc < release < later commits.
	if dpkg, err := exec.LookPath("dpkg"); err == nil {
		for _, pair := range [][2]string{{"1.2.3~rc.1", "1.2.3"}, {"1.2.3", "1.2.3+git4.abcdef0"}, {"0.0~git20261129.051632.989b7cd", "0.1"}} {
			if err := exec.Command(dpkg, "--compare-versions", pair[0], "lt", pair[1]).Run(); err != nil {
				t.Errorf("dpkg: %s is not before %s: %v", pair[0], pair[1], err)
			}
		}
	}
}

// control parses a control file's fields; continuation lines join with \n.
func control(t *testing.T, text string) map[string]string {
	t.Helper()
	fields := map[string]string{}
	var last string
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, " ") && last != "" {
			fields[last] += "\n" + line
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("control: cannot parse %q", line)
		}
		if _, dup := fields[k]; dup {
			t.Fatalf("control: %s twice", k)
		}
		fields[k], last = v, k
	}
	return fields
}

func TestControl(t *testing.T) {
	p := Package{Version: "1.2.3", Arch: "armhf", Maintainer: "A <a@example.org>", Epoch: epoch}
	text := p.Control(10101)
	if !strings.HasSuffix(text, ".\n") || strings.Contains(text, "\n\n") {
		t.Errorf("control must end in one newline and have no blank line:\n%s", text)
	}
	f := control(t, text)
	for k, v := range map[string]string{
		"Package": "assetd", "Version": "1.2.3", "Architecture": "armhf", "Maintainer": "A <a@example.org>",
		"Installed-Size": "10101", "Depends": Depends, "Section": "net", "Priority": "optional", "Homepage": Homepage,
	} {
		if f[k] != v {
			t.Errorf("%s: %q, want %q", k, f[k], v)
		}
	}
	synopsis, _, _ := strings.Cut(f["Description"], "\n")
	if synopsis == "" || len(synopsis) > 80 || strings.HasPrefix(synopsis, "assetd") {
		t.Errorf("Description synopsis %q: short, not starting with the package name", synopsis)
	}
	if p.FileName() != "assetd_1.2.3_armhf.deb" {
		t.Errorf("FileName %q", p.FileName())
	}
}

func TestDebArch(t *testing.T) {
	// The test binary is an ELF of the machine it runs on: it tells the
	// supported architectures apart, or is refused as dynamic.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	arch, err := DebArch(self)
	if err != nil && !strings.Contains(err.Error(), "dynamically linked") {
		t.Logf("%s: %v", self, err)
	} else if err == nil && !slices.Contains([]string{"amd64", "arm64", "armhf"}, arch) {
		t.Errorf("DebArch = %q", arch)
	}
	notELF := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notELF, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := DebArch(notELF); err == nil {
		t.Error("DebArch of a shell script: no error")
	}
}

// fakeSources is a repository checkout with a stand-in binary and docs.
func fakeSources(t *testing.T) Sources {
	t.Helper()
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		name = filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("bin/assetd", "\x7fELF stand-in")
	write("docs/man/assetd.1", ".TH ASSETD 1\n")
	write("docs/man/assetd-serve.1", ".TH ASSETD-SERVE 1\n")
	write("docs/man/assetd.toml.5", ".TH ASSETD.TOML 5\n")
	for _, name := range []string{"assetd", "_assetd", "assetd.fish"} {
		write("docs/completions/"+name, "# "+name+"\n")
	}
	return Sources{Binary: filepath.Join(dir, "bin/assetd"), Repo: "..", Docs: filepath.Join(dir, "docs")}
}

func TestTree(t *testing.T) {
	p := Package{Version: "1.2.3", Arch: "amd64", Maintainer: "A <a@example.org>", Epoch: epoch}
	files, err := Files(p, fakeSources(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := WriteTree(dir, p, files); err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{
		"DEBIAN/control": 0o644, "DEBIAN/conffiles": 0o644, "DEBIAN/md5sums": 0o644,
		"DEBIAN/postinst": 0o755, "DEBIAN/prerm": 0o755, "DEBIAN/postrm": 0o755,
		"usr/bin/assetd":                                                 0o755,
		"usr/lib/systemd/system/assetd.service":                          0o644,
		"usr/lib/systemd/system/assetd.socket":                           0o644,
		"usr/lib/sysusers.d/assetd.conf":                                 0o644,
		"usr/lib/tmpfiles.d/assetd.conf":                                 0o644,
		"usr/share/assetd/assetd.toml":                                   0o644,
		"etc/assetd/assetd.toml":                                         0o644,
		"usr/share/bash-completion/completions/assetd":                   0o644,
		"usr/share/zsh/vendor-completions/_assetd":                       0o644,
		"usr/share/fish/vendor_completions.d/assetd.fish":                0o644,
		"usr/share/man/man1/assetd.1.gz":                                 0o644,
		"usr/share/man/man1/assetd-serve.1.gz":                           0o644,
		"usr/share/man/man5/assetd.toml.5.gz":                            0o644,
		"usr/share/doc/assetd/copyright":                                 0o644,
		"usr/share/doc/assetd/examples/site-cache-nginx.conf":            0o644,
		"usr/share/doc/assetd/examples/prometheus/assetd-rules.yml":      0o644,
		"usr/share/doc/assetd/examples/prometheus/assetd-rules.test.yml": 0o644,
		"usr/share/doc/assetd/changelog.gz":                              0o644,
		"usr/share/lintian/overrides/assetd":                             0o644,
	}
	got := map[string]fs.FileMode{}
	err = filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if !fi.ModTime().Equal(epoch) {
			t.Errorf("%s: mtime %v, want %v", name, fi.ModTime(), epoch)
		}
		if d.IsDir() {
			if fi.Mode().Perm() != 0o755 {
				t.Errorf("%s: directory mode %v", name, fi.Mode())
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, name)
		got[filepath.ToSlash(rel)] = fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, mode := range want {
		if m, ok := got[name]; !ok || m != mode {
			t.Errorf("%s: mode %v (present %v), want %v", name, m, ok, mode)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("unexpected file %s", name)
		}
	}

	read := func(name string) string {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if c := read("DEBIAN/conffiles"); c != "/etc/assetd/assetd.toml\n" {
		t.Errorf("conffiles %q", c)
	}
	sums := read("DEBIAN/md5sums")
	if !strings.Contains(sums, "  usr/bin/assetd\n") || strings.Contains(sums, "etc/assetd") || strings.Contains(sums, "DEBIAN") {
		t.Errorf("md5sums: every file but the conffile and DEBIAN:\n%s", sums)
	}
	if n := strings.Count(sums, "\n"); n != len(want)-7 {
		t.Errorf("md5sums has %d lines, want %d", n, len(want)-7)
	}
	if read("etc/assetd/assetd.toml") != read("usr/share/assetd/assetd.toml") {
		t.Error("the conffile is not the documented configuration")
	}
	zr, err := gzip.NewReader(strings.NewReader(read("usr/share/man/man1/assetd.1.gz")))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(zr)
	if string(page) != ".TH ASSETD 1\n" || zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("man page: %q, name %q, mtime %v: want gzip -n", page, zr.Name, zr.ModTime)
	}

	// The same inputs make the same tree.
	dir2 := t.TempDir()
	if err := WriteTree(dir2, p, files); err != nil {
		t.Fatal(err)
	}
	for name := range want {
		a, _ := os.ReadFile(filepath.Join(dir, name))
		b, _ := os.ReadFile(filepath.Join(dir2, name))
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between two trees", name)
		}
	}
}

func TestFilesNeedDocs(t *testing.T) {
	src := fakeSources(t)
	src.Docs = t.TempDir()
	if _, err := Files(Package{Epoch: epoch}, src); err == nil || !strings.Contains(err.Error(), "docgen") {
		t.Errorf("no docs: %v", err)
	}
}
