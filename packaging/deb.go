package packaging

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/md5"
	"debug/elf"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

//go:embed debian
var debianFiles embed.FS

// Name is the package's name; Homepage its upstream.
const (
	Name     = "assetd"
	Homepage = "https://github.com/assetd/assetd"
)

// Depends is what the maintainer scripts need: systemd-sysusers makes the
// assetd user (debhelper's dh_installsysusers asks for the same). The
// binary is static and needs no library.
const Depends = "systemd | systemd-standalone-sysusers | systemd-sysusers"

// Package is one Debian binary package of assetd.
type Package struct {
	Version    string    // a Debian version (DebVersion)
	Arch       string    // a Debian architecture: amd64, arm64, armhf
	Maintainer string    // "Name <address>"
	Epoch      time.Time // SOURCE_DATE_EPOCH: every date in the package
}

// FileName is the package's conventional file name.
func (p Package) FileName() string {
	return fmt.Sprintf("%s_%s_%s.deb", Name, p.Version, p.Arch)
}

// Control is DEBIAN/control; installedKiB is the unpacked size.
func (p Package) Control(installedKiB int64) string {
	return fmt.Sprintf(`Package: %s
Version: %s
Architecture: %s
Maintainer: %s
Installed-Size: %d
Depends: %s
Section: net
Priority: optional
Homepage: %s
Description: avatar download-and-cache daemon
 assetd downloads, verifies and caches avatars (manifests and their asset
 files) for every app on a device: kiosks, robots, displays and desktops.
 It fetches each avatar once, checks every byte by size and sha256 while it
 streams, keeps the cache fresh, heals damage, and answers local apps over
 a Unix socket (/run/assetd/assetd.sock), offline too.
 .
 The package runs assetd as a hardened systemd service with socket
 activation, under its own user, configured in /etc/assetd/assetd.toml.
`, Name, p.Version, p.Arch, p.Maintainer, installedKiB, Depends, Homepage)
}

// DebArch reads the Debian architecture of an ELF binary and checks that it
// is static: the package declares no library dependencies.
func DebArch(binary string) (string, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked (build it with CGO_ENABLED=0)", binary)
		}
	}
	switch {
	case f.Machine == elf.EM_X86_64 && f.Class == elf.ELFCLASS64:
		return "amd64", nil
	case f.Machine == elf.EM_AARCH64 && f.Class == elf.ELFCLASS64:
		return "arm64", nil
	case f.Machine == elf.EM_ARM && f.Class == elf.ELFCLASS32:
		// GOARM=7 is ARMv7 with VFPv3: Debian's armhf.
		return "armhf", nil
	}
	return "", fmt.Errorf("%s: no Debian architecture for ELF %v %v", binary, f.Class, f.Machine)
}

var (
	// v1.2.3, v1.2.3-rc.1, v1.2.3-4-gabcdef0, each maybe -dirty (git describe).
	tagVersion = regexp.MustCompile(`^v?([0-9][0-9A-Za-z.]*)(?:-((?:alpha|beta|rc|pre)[0-9A-Za-z.]*))?(?:-([0-9]+)-g([0-9a-f]+))?(-dirty)?$`)
	// An untagged commit: git describe --always.
	hashVersion = regexp.MustCompile(`^([0-9a-f]{7,40})(-dirty)?$`)
)

// DebVersion turns the output of `git describe --tags --always --dirty`
// into a Debian version that sorts the way releases do: a pre-release
// before its release (~), commits after a tag after it (+), and an
// untagged commit as 0.0~gitDATE.TIME.HASH by its commit date.
func DebVersion(v string, date time.Time) (string, error) {
	// A tag starts with v or has a dot: a bare number may be a commit.
	if m := tagVersion.FindStringSubmatch(v); m != nil && (v[0] == 'v' || strings.Contains(m[1], ".")) {
		s := m[1]
		if m[2] != "" {
			s += "~" + m[2]
		}
		if m[3] != "" {
			s += "+git" + m[3] + "." + m[4]
		}
		if m[5] != "" {
			s += "+dirty"
		}
		return s, nil
	}
	if m := hashVersion.FindStringSubmatch(v); m != nil {
		if date.IsZero() {
			return "", fmt.Errorf("version %q is a commit: its date is needed", v)
		}
		s := "0.0~git" + date.UTC().Format("20060102.150405") + "." + m[1]
		if m[2] != "" {
			s += "+dirty"
		}
		return s, nil
	}
	return "", fmt.Errorf("cannot make a Debian version of %q", v)
}

// Sources are the inputs of a package besides the embedded debian/ files.
type Sources struct {
	Binary string // the static assetd for the package's architecture
	Repo   string // the repository root: systemd/ and configs/
	Docs   string // what `assetd docgen` wrote: man/ and completions/
}

// File is one file of the package.
type File struct {
	Path     string // absolute, in the installed system
	Data     []byte
	Mode     fs.FileMode
	Conffile bool
}

// Files lists the package's files, sorted by path.
func Files(p Package, src Sources) ([]File, error) {
	var files []File
	var errs []error
	add := func(dst, from string, mode fs.FileMode) {
		data, err := os.ReadFile(from)
		errs = append(errs, err)
		files = append(files, File{Path: dst, Data: data, Mode: mode})
	}
	add("/usr/bin/assetd", src.Binary, 0o755)
	repo := func(p string) string { return filepath.Join(src.Repo, filepath.FromSlash(p)) }
	add("/usr/lib/systemd/system/assetd.service", repo("systemd/assetd.service"), 0o644)
	add("/usr/lib/systemd/system/assetd.socket", repo("systemd/assetd.socket"), 0o644)
	add("/usr/lib/sysusers.d/assetd.conf", repo("systemd/assetd.sysusers"), 0o644)
	add("/usr/lib/tmpfiles.d/assetd.conf", repo("systemd/assetd.tmpfiles"), 0o644)
	// The tmpfiles.d entry copies this one when /etc/assetd/assetd.toml is gone.
	add("/usr/share/assetd/assetd.toml", repo("configs/assetd.toml"), 0o644)
	add("/etc/assetd/assetd.toml", repo("configs/assetd.toml"), 0o644)
	files[len(files)-1].Conffile = true
	// The site cache for fleets (docs/fleet.md), to copy into nginx's conf.d.
	add("/usr/share/doc/assetd/examples/site-cache-nginx.conf", repo("deploy/site-cache/nginx.conf"), 0o644)
	// The fleet's alerts (docs/fleet.md, Monitoring), for the Prometheus
	// servers' rule_files, with their promtool unit tests.
	add("/usr/share/doc/assetd/examples/prometheus/assetd-rules.yml", repo("deploy/prometheus/assetd-rules.yml"), 0o644)
	add("/usr/share/doc/assetd/examples/prometheus/assetd-rules.test.yml", repo("deploy/prometheus/assetd-rules.test.yml"), 0o644)

	comp := filepath.Join(src.Docs, "completions")
	add("/usr/share/bash-completion/completions/assetd", filepath.Join(comp, "assetd"), 0o644)
	add("/usr/share/zsh/vendor-completions/_assetd", filepath.Join(comp, "_assetd"), 0o644)
	add("/usr/share/fish/vendor_completions.d/assetd.fish", filepath.Join(comp, "assetd.fish"), 0o644)

	pages, err := filepath.Glob(filepath.Join(src.Docs, "man", "*.1"))
	errs = append(errs, err)
	if len(pages) == 0 {
		errs = append(errs, fmt.Errorf("no man pages in %s/man: run assetd docgen", src.Docs))
	}
	// Section 5: assetd.toml(5), the configuration file.
	confPages, err := filepath.Glob(filepath.Join(src.Docs, "man", "*.5"))
	errs = append(errs, err)
	for _, page := range append(pages, confPages...) {
		data, err := os.ReadFile(page)
		errs = append(errs, err)
		section := "man" + strings.TrimPrefix(filepath.Ext(page), ".")
		files = append(files, File{Path: "/usr/share/man/" + section + "/" + filepath.Base(page) + ".gz", Data: gz(data), Mode: 0o644})
	}

	copyright, err := debianFiles.ReadFile("debian/copyright")
	errs = append(errs, err)
	overrides, err := debianFiles.ReadFile("debian/lintian-overrides")
	errs = append(errs, err)
	files = append(files,
		File{Path: "/usr/share/doc/assetd/copyright", Data: copyright, Mode: 0o644},
		File{Path: "/usr/share/doc/assetd/changelog.gz", Data: gz([]byte(p.changelog())), Mode: 0o644},
		File{Path: "/usr/share/lintian/overrides/assetd", Data: overrides, Mode: 0o644})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return files, nil
}

// changelog is the one entry a native package built from a commit has.
func (p Package) changelog() string {
	return fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * Built from the assetd repository.\n\n -- %s  %s\n",
		Name, p.Version, p.Maintainer, p.Epoch.UTC().Format(time.RFC1123Z))
}

// gz compresses like gzip -9n: no name, no time, the same bytes each time.
func gz(data []byte) []byte {
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	w.Write(data)
	w.Close()
	return b.Bytes()
}

// Scripts are the maintainer scripts, by name.
func Scripts() (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, name := range []string{"postinst", "prerm", "postrm"} {
		data, err := debianFiles.ReadFile("debian/" + name)
		if err != nil {
			return nil, err
		}
		out[name] = data
	}
	return out, nil
}

// Metadata is the DEBIAN directory for files: control, conffiles,
// md5sums (conffiles left out, as dh_md5sums does) and the scripts.
func Metadata(p Package, files []File) (map[string][]byte, error) {
	var kib int64
	dirs := map[string]bool{}
	var conffiles, sums strings.Builder
	for _, f := range files {
		kib += (int64(len(f.Data)) + 1023) / 1024
		for d := path.Dir(f.Path); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
		if f.Conffile {
			conffiles.WriteString(f.Path + "\n")
			continue
		}
		fmt.Fprintf(&sums, "%x  %s\n", md5.Sum(f.Data), strings.TrimPrefix(f.Path, "/"))
	}
	meta, err := Scripts()
	if err != nil {
		return nil, err
	}
	meta["control"] = []byte(p.Control(kib + int64(len(dirs))))
	meta["conffiles"] = []byte(conffiles.String())
	meta["md5sums"] = []byte(sums.String())
	return meta, nil
}

// WriteTree lays the package out in dir for dpkg-deb: files, DEBIAN/, and
// every mtime set to the epoch.
func WriteTree(dir string, p Package, files []File) error {
	meta, err := Metadata(p, files)
	if err != nil {
		return err
	}
	write := func(rel string, data []byte, mode fs.FileMode) error {
		name := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(name, data, mode); err != nil {
			return err
		}
		return os.Chmod(name, mode) // not masked by the umask
	}
	for _, f := range files {
		if err := write(f.Path, f.Data, f.Mode); err != nil {
			return err
		}
	}
	for name, data := range meta {
		mode := fs.FileMode(0o644)
		if _, script := debianScriptNames[name]; script {
			mode = 0o755
		}
		if err := write("DEBIAN/"+name, data, mode); err != nil {
			return err
		}
	}
	return touchAll(dir, p.Epoch)
}

var debianScriptNames = map[string]struct{}{"postinst": {}, "prerm": {}, "postrm": {}}

// touchAll sets every mtime under dir to t, directories too, with modes
// 0755 whatever the umask.
func touchAll(dir string, t time.Time) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, name)
			return os.Chmod(name, 0o755)
		}
		return os.Chtimes(name, t, t)
	})
	if err != nil {
		return err
	}
	for _, d := range slices.Backward(dirs) {
		if err := os.Chtimes(d, t, t); err != nil {
			return err
		}
	}
	return nil
}

// Build writes the package into outDir with dpkg-deb and returns its path.
// Files are owned by root:root whoever builds it.
func Build(ctx context.Context, p Package, src Sources, outDir string) (string, error) {
	arch, err := DebArch(src.Binary)
	if err != nil {
		return "", err
	}
	if p.Arch == "" {
		p.Arch = arch
	} else if p.Arch != arch {
		return "", fmt.Errorf("%s is %s, not %s", src.Binary, arch, p.Arch)
	}
	files, err := Files(p, src)
	if err != nil {
		return "", err
	}
	tree, err := os.MkdirTemp("", "mkdeb-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tree)
	if err := WriteTree(tree, p, files); err != nil {
		return "", err
	}
	out := filepath.Join(outDir, p.FileName())
	cmd := exec.CommandContext(ctx, "dpkg-deb", "--root-owner-group", "-Zxz", "--build", tree, out)
	cmd.Env = append(os.Environ(), fmt.Sprintf("SOURCE_DATE_EPOCH=%d", p.Epoch.Unix()))
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("dpkg-deb --build: %v\n%s", err, msg)
	}
	return out, nil
}
