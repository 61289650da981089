package packaging

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// release is what `make deb` built from one commit.
type release struct {
	dist                        string // the DIST directory
	src                         string // the exported commit it was built from
	version, commit, dateString string
	date                        time.Time
	debVersion                  string
}

// target is one architecture of the release.
type target struct {
	binary  string // in dist
	machine elf.Machine
	class   elf.Class
	goarch  string
	goarm   string
	debArch string
	qemu    []string // qemu-user programs that run it on another machine
	file    string   // what file(1) says of it
}

var targets = []target{
	{"assetd-linux-amd64", elf.EM_X86_64, elf.ELFCLASS64, "amd64", "", "amd64", []string{"qemu-x86_64-static", "qemu-x86_64"}, "x86-64"},
	{"assetd-linux-arm64", elf.EM_AARCH64, elf.ELFCLASS64, "arm64", "", "arm64", []string{"qemu-aarch64-static", "qemu-aarch64"}, "ARM aarch64"},
	{"assetd-linux-armv7", elf.EM_ARM, elf.ELFCLASS32, "arm", "7", "armhf", []string{"qemu-arm-static", "qemu-arm"}, "ARM, EABI5"},
}

// TestRelease builds the committed HEAD twice with make deb, from two
// exports in two directories, the second with an empty Go build cache, and
// checks that every byte agrees; then it inspects the binaries and the
// packages and installs the amd64 package in a throwaway root.
func TestRelease(t *testing.T) {
	if os.Getenv("ASSETD_PACKAGING_TEST") != "1" {
		t.Skip("the release build takes minutes: `make package-test` (ASSETD_PACKAGING_TEST=1) runs it")
	}
	for _, tool := range []string{"git", "tar", "make", "dpkg-deb", "sha256sum"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: the release build needs it", tool)
		}
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	r := &release{
		version:    run(t, "", nil, "git", "-C", repo, "describe", "--tags", "--always"),
		commit:     run(t, "", nil, "git", "-C", repo, "rev-parse", "--short", "HEAD"),
		dateString: run(t, "", nil, "git", "-C", repo, "log", "-1", "--format=%cI"),
	}
	epoch, err := strconv.ParseInt(run(t, "", nil, "git", "-C", repo, "log", "-1", "--format=%ct"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	r.date = time.Unix(epoch, 0).UTC()
	if r.debVersion, err = DebVersion(r.version, r.date); err != nil {
		t.Fatal(err)
	}
	t.Logf("building %s (commit %s, %s) twice; uncommitted changes are not in it", r.version, r.commit, r.dateString)

	build := func(fresh bool) string {
		src := filepath.Join(t.TempDir(), "assetd")
		if err := os.Mkdir(src, 0o755); err != nil {
			t.Fatal(err)
		}
		tarball := filepath.Join(t.TempDir(), "head.tar")
		run(t, "", nil, "git", "-C", repo, "archive", "--format=tar", "-o", tarball, "HEAD")
		run(t, "", nil, "tar", "-x", "-f", tarball, "-C", src)
		dist := filepath.Join(t.TempDir(), "dist")
		env := []string{"TZ=UTC"}
		if fresh {
			env = append(env, "GOCACHE="+t.TempDir())
		}
		start := time.Now()
		run(t, src, env, "make", "--no-print-directory", "deb", "DIST="+dist, "VERSION="+r.version,
			"COMMIT="+r.commit, "DATE="+r.dateString, "SOURCE_DATE_EPOCH="+strconv.FormatInt(epoch, 10))
		t.Logf("make deb in %s: %v (fresh build cache: %v)", src, time.Since(start).Round(time.Second), fresh)
		if r.src == "" {
			r.src = src
		}
		return dist
	}
	r.dist = build(false)
	sameBytes(t, r.dist, build(true))

	t.Run("binaries", func(t *testing.T) { checkBinaries(t, r) })
	t.Run("packages", func(t *testing.T) { checkPackages(t, r) })
	t.Run("lintian", func(t *testing.T) { checkLintian(t, r) })
	t.Run("install", func(t *testing.T) { checkInstall(t, r) })
}

// run runs a command and returns its trimmed stdout; a failure is fatal.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return strings.TrimSpace(string(out))
}

// sameBytes checks that two directories hold the same files, byte for byte.
func sameBytes(t *testing.T, a, b string) {
	t.Helper()
	list := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}
	na, nb := list(a), list(b)
	if !slices.Equal(na, nb) {
		t.Fatalf("the two builds made different files: %q and %q", na, nb)
	}
	for _, name := range na {
		da, err1 := os.ReadFile(filepath.Join(a, name))
		db, err2 := os.ReadFile(filepath.Join(b, name))
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !bytes.Equal(da, db) {
			t.Errorf("%s differs between two builds of one commit: sha256 %x and %x", name, sha256.Sum256(da), sha256.Sum256(db))
			continue
		}
		t.Logf("%-45s %9d bytes, identical in both builds", name, len(da))
	}
}

func checkBinaries(t *testing.T, r *release) {
	sums := map[string]string{}
	data, err := os.ReadFile(filepath.Join(r.dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS: %q", line)
		}
		sums[name] = sum
	}
	if len(sums) != 2*len(targets) {
		t.Errorf("SHA256SUMS lists %d files, want the %d binaries and packages", len(sums), 2*len(targets))
	}
	for name, sum := range sums {
		data, err := os.ReadFile(filepath.Join(r.dist, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprintf("%x", sha256.Sum256(data)); got != sum {
			t.Errorf("SHA256SUMS: %s is %s, listed %s", name, got, sum)
		}
	}

	for _, tg := range targets {
		t.Run(tg.goarch, func(t *testing.T) {
			bin := filepath.Join(r.dist, tg.binary)
			f, err := elf.Open(bin)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Machine != tg.machine || f.Class != tg.class {
				t.Errorf("ELF %v %v, want %v %v", f.Class, f.Machine, tg.class, tg.machine)
			}
			for _, p := range f.Progs {
				if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
					t.Errorf("not static: has %v", p.Type)
				}
			}
			if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
				t.Errorf("needs libraries %q", libs)
			}
			if s := f.Section(".note.go.buildid"); s != nil {
				note, _ := s.Data()
				if len(note) > 16 { // the note header only: -buildid= left it empty
					t.Errorf("a Go build ID is stamped: %q", note[16:])
				}
			}
			bi, err := buildinfo.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			for k, v := range map[string]string{"CGO_ENABLED": "0", "GOOS": "linux", "GOARCH": tg.goarch, "GOARM": tg.goarm, "-trimpath": "true"} {
				if settings[k] != v {
					t.Errorf("built with %s=%q, want %q", k, settings[k], v)
				}
			}
			// -trimpath keeps -ldflags out of the build info: look for the
			// stamps themselves (checked again by running version below).
			data := mustRead(t, bin)
			for _, want := range []string{r.version, r.commit, r.dateString} {
				if !bytes.Contains(data, []byte(want)) {
					t.Errorf("the binary lacks the stamp %q", want)
				}
			}
			if file, err := exec.LookPath("file"); err == nil {
				out := run(t, "", nil, file, "-b", bin)
				t.Logf("file: %s", out)
				if !strings.Contains(out, tg.file) || !strings.Contains(out, "statically linked") {
					t.Errorf("file says %q, want %q and statically linked", out, tg.file)
				}
			}
			fi, _ := os.Stat(bin)
			t.Logf("%s: %d bytes (%.1f MiB)", tg.binary, fi.Size(), float64(fi.Size())/(1<<20))
			checkVersion(t, r, tg, bin)
		})
	}
}

// checkVersion runs `assetd version` natively or under qemu-user.
func checkVersion(t *testing.T, r *release, tg target, bin string) {
	var argv []string
	if tg.goarch == runtime.GOARCH && (tg.goarm == "" || tg.goarm == "7") {
		argv = []string{bin}
	} else {
		for _, q := range tg.qemu {
			if p, err := exec.LookPath(q); err == nil {
				argv = []string{p, bin}
				break
			}
		}
	}
	if argv == nil {
		t.Logf("SKIP: %s not found: `assetd version` of the %s binary was not run (apt-get install qemu-user-static)", strings.Join(tg.qemu, " or "), tg.goarch)
		return
	}
	out := run(t, "", nil, argv[0], append(argv[1:], "version", "--json")...)
	var v struct{ Version, Commit, Date, Go string }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	if v.Version != r.version || v.Commit != r.commit || v.Date != r.dateString || v.Go != runtime.Version() {
		t.Errorf("version --json = %+v, want %s %s %s %s", v, r.version, r.commit, r.dateString, runtime.Version())
	}
	plain := run(t, "", nil, argv[0], append(argv[1:], "version")...)
	if want := fmt.Sprintf("assetd %s (%s, %s) %s", r.version, r.commit, r.dateString, runtime.Version()); plain != want {
		t.Errorf("version = %q, want %q", plain, want)
	}
	t.Logf("%s: %s", strings.Join(append([]string{filepath.Base(argv[0])}, "version"), " "), plain)
}

// entry is one line of dpkg-deb --contents.
type entry struct{ mode, owner, date string }

func contents(t *testing.T, deb string) map[string]entry {
	t.Helper()
	out := run(t, "", []string{"TZ=UTC"}, "dpkg-deb", "--contents", deb)
	m := map[string]entry{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 6 {
			t.Fatalf("dpkg-deb --contents: %q", sc.Text())
		}
		m[strings.TrimSuffix(strings.TrimPrefix(f[5], "."), "/")] = entry{f[0], f[1], f[3] + " " + f[4]}
	}
	return m
}

func checkPackages(t *testing.T, r *release) {
	for _, tg := range targets {
		t.Run(tg.debArch, func(t *testing.T) {
			deb := filepath.Join(r.dist, Package{Version: r.debVersion, Arch: tg.debArch}.FileName())
			fi, err := os.Stat(deb)
			if err != nil {
				t.Fatal(err)
			}
			bin, _ := os.Stat(filepath.Join(r.dist, tg.binary))
			t.Logf("%s: %d bytes (%.1f MiB); the binary in it %d bytes", filepath.Base(deb), fi.Size(), float64(fi.Size())/(1<<20), bin.Size())

			info := run(t, "", nil, "dpkg-deb", "--info", deb)
			for _, member := range []string{"control", "conffiles", "md5sums", "postinst", "prerm", "postrm"} {
				if !strings.Contains(info, " "+member+" ") {
					t.Errorf("dpkg-deb --info lists no %s:\n%s", member, info)
				}
			}
			fields := control(t, run(t, "", nil, "dpkg-deb", "--field", deb))
			for k, v := range map[string]string{"Package": Name, "Version": r.debVersion, "Architecture": tg.debArch, "Depends": Depends} {
				if fields[k] != v {
					t.Errorf("%s: %q, want %q", k, fields[k], v)
				}
			}
			if kib, _ := strconv.ParseInt(fields["Installed-Size"], 10, 64); kib < bin.Size()/1024 {
				t.Errorf("Installed-Size %d KiB is less than the binary", kib)
			}
			if strings.Contains(fields["Depends"], "libc") || fields["Pre-Depends"] != "" {
				t.Errorf("a static binary needs no library: Depends %q Pre-Depends %q", fields["Depends"], fields["Pre-Depends"])
			}

			files := contents(t, deb)
			date := r.date.Format("2006-01-02 15:04")
			for _, path := range []string{
				"/usr/bin/assetd", "/usr/lib/systemd/system/assetd.service", "/usr/lib/systemd/system/assetd.socket",
				"/usr/lib/sysusers.d/assetd.conf", "/usr/lib/tmpfiles.d/assetd.conf", "/etc/assetd/assetd.toml",
				"/usr/share/assetd/assetd.toml", "/usr/share/man/man1/assetd.1.gz", "/usr/share/man/man1/assetd-serve.1.gz",
				"/usr/share/bash-completion/completions/assetd", "/usr/share/zsh/vendor-completions/_assetd",
				"/usr/share/fish/vendor_completions.d/assetd.fish", "/usr/share/doc/assetd/copyright",
				"/usr/share/doc/assetd/changelog.gz",
			} {
				if _, ok := files[path]; !ok {
					t.Errorf("the package lacks %s", path)
				}
			}
			for path, e := range files {
				want := "-rw-r--r--"
				switch {
				case path == "/usr/bin/assetd":
					want = "-rwxr-xr-x"
				case strings.HasPrefix(e.mode, "d"):
					want = "drwxr-xr-x"
				}
				if e.mode != want || e.owner != "root/root" || e.date != date {
					t.Errorf("%s: %s %s %s, want %s root/root %s", path, e.mode, e.owner, e.date, want, date)
				}
				if !slices.Contains([]string{"", "/etc", "/usr"}, path) && !strings.HasPrefix(path, "/usr/") && !strings.HasPrefix(path, "/etc/assetd") {
					t.Errorf("%s: outside /usr and /etc/assetd", path)
				}
			}

			// The control members and the files, unpacked.
			dir := t.TempDir()
			run(t, "", nil, "dpkg-deb", "--control", deb, filepath.Join(dir, "DEBIAN"))
			run(t, "", nil, "dpkg-deb", "--extract", deb, dir)
			read := func(name string) []byte {
				t.Helper()
				data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
				if err != nil {
					t.Fatal(err)
				}
				return data
			}
			if c := string(read("DEBIAN/conffiles")); c != "/etc/assetd/assetd.toml\n" {
				t.Errorf("conffiles %q", c)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(read("DEBIAN/md5sums"))), "\n") {
				sum, name, _ := strings.Cut(line, "  ")
				if got := fmt.Sprintf("%x", md5.Sum(read(name))); got != sum {
					t.Errorf("md5sums: %s is %s, listed %s", name, got, sum)
				}
			}
			for _, s := range []string{"postinst", "prerm", "postrm"} {
				if fi, err := os.Stat(filepath.Join(dir, "DEBIAN", s)); err != nil || fi.Mode().Perm() != 0o755 {
					t.Errorf("DEBIAN/%s: %v %v", s, fi, err)
				}
			}
			if !bytes.Equal(read("usr/bin/assetd"), mustRead(t, filepath.Join(r.dist, tg.binary))) {
				t.Errorf("/usr/bin/assetd is not %s", tg.binary)
			}
			if !bytes.Equal(read("etc/assetd/assetd.toml"), mustRead(t, filepath.Join(r.src, "configs/assetd.toml"))) {
				t.Error("/etc/assetd/assetd.toml is not configs/assetd.toml")
			}
			if !bytes.Equal(read("usr/lib/systemd/system/assetd.service"), mustRead(t, filepath.Join(r.src, "systemd/assetd.service"))) {
				t.Error("the unit is not systemd/assetd.service")
			}
		})
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func checkLintian(t *testing.T, r *release) {
	lintian, err := exec.LookPath("lintian")
	if err != nil {
		t.Skip("lintian not found: the packages were not linted (apt-get install lintian)")
	}
	for _, tg := range targets {
		deb := filepath.Join(r.dist, Package{Version: r.debVersion, Arch: tg.debArch}.FileName())
		cmd := exec.Command(lintian, "--fail-on", "error,warning", "--tag-display-limit", "0", deb)
		out, err := cmd.CombinedOutput()
		var tags []string
		for _, line := range strings.Split(string(out), "\n") {
			if len(line) > 2 && line[1] == ':' && line[0] != 'N' {
				tags = append(tags, line)
			}
		}
		t.Logf("lintian %s: %d tags (the static binary is overridden: debian/lintian-overrides)\n%s", filepath.Base(deb), len(tags), strings.Join(tags, "\n"))
		if err != nil {
			t.Errorf("lintian %s: %v: it found errors or warnings", filepath.Base(deb), err)
		}
	}
}

// hostPaths must not be touched by an install into another root.
var hostPaths = []string{
	"/usr/bin/assetd", "/etc/assetd", "/var/lib/assetd",
	"/etc/systemd/system/multi-user.target.wants/assetd.service",
	"/etc/systemd/system/sockets.target.wants/assetd.socket",
	"/var/lib/systemd/deb-systemd-helper-enabled/assetd.service.dsh-also",
}

// checkInstall installs, upgrades, removes and purges the amd64 package in
// a root the test makes, with dpkg --root; the maintainer scripts run
// chrootless with DPKG_ROOT set, as they would for a bootstrap.
func checkInstall(t *testing.T, r *release) {
	dpkg, err := exec.LookPath("dpkg")
	if err != nil {
		t.Skip("dpkg not found: the package was not installed")
	}
	if os.Geteuid() != 0 {
		t.Skip("not root: dpkg --root cannot give the files to root:root; run make package-test as root to install the package")
	}
	root := t.TempDir()
	for _, d := range []string{"etc", "var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"var/lib/dpkg/status", "var/lib/dpkg/available"} {
		if err := os.WriteFile(filepath.Join(root, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	host := map[string]bool{}
	for _, p := range hostPaths {
		_, err := os.Lstat(p)
		host[p] = err == nil
	}
	deb := filepath.Join(r.dist, Package{Version: r.debVersion, Arch: "amd64"}.FileName())
	pkg := func(args ...string) string {
		t.Helper()
		return run(t, "", nil, dpkg, append([]string{"--root=" + root, "--force-script-chrootless",
			"--force-not-root", "--force-depends", "--log=/dev/null"}, args...)...)
	}
	status := func() string {
		out, _ := exec.Command(dpkg, "--root="+root, "--status", "assetd").CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if s, ok := strings.CutPrefix(line, "Status: "); ok {
				return s
			}
		}
		return "not installed"
	}
	exists := func(rel string) bool {
		_, err := os.Lstat(filepath.Join(root, rel))
		return err == nil
	}
	hasSysusers := has("systemd-sysusers")
	hasHelper := has("deb-systemd-helper")

	pkg("--install", deb)
	if s := status(); s != "install ok installed" {
		t.Fatalf("after install: status %q", s)
	}
	modes := map[string]fs.FileMode{
		"usr/bin/assetd": 0o755, "etc/assetd/assetd.toml": 0o644,
		"usr/lib/systemd/system/assetd.service": 0o644, "usr/lib/systemd/system/assetd.socket": 0o644,
		"usr/lib/sysusers.d/assetd.conf": 0o644, "usr/lib/tmpfiles.d/assetd.conf": 0o644,
		"usr/share/man/man1/assetd.1.gz": 0o644, "usr/share/bash-completion/completions/assetd": 0o644,
	}
	for rel, mode := range modes {
		fi, err := os.Stat(filepath.Join(root, rel))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("installed %s: %v %v, want %v", rel, fi, err, mode)
		}
	}
	installed := run(t, "", nil, filepath.Join(root, "usr/bin/assetd"), "version")
	t.Logf("the installed binary: %s", installed)
	if hasSysusers {
		if passwd := string(mustRead(t, filepath.Join(root, "etc/passwd"))); !strings.Contains(passwd, "assetd:x:") || !strings.Contains(passwd, ":/var/lib/assetd:/usr/sbin/nologin") {
			t.Errorf("postinst made no assetd user:\n%s", passwd)
		}
	} else {
		t.Log("systemd-sysusers not found: the assetd user was not checked")
	}
	if hasHelper {
		for link, unit := range map[string]string{
			"etc/systemd/system/multi-user.target.wants/assetd.service": "/usr/lib/systemd/system/assetd.service",
			"etc/systemd/system/sockets.target.wants/assetd.socket":     "/usr/lib/systemd/system/assetd.socket",
		} {
			if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != unit {
				t.Errorf("not enabled: %s -> %q, %v", link, got, err)
			}
		}
	} else {
		t.Log("deb-systemd-helper not found: enabling the units was not checked")
	}

	t.Logf("installed into %s: %d files checked, user and unit links made by the maintainer scripts", root, len(modes))

	// Installing it again is the upgrade path (postinst configure OLD).
	pkg("--install", deb)
	if s := status(); s != "install ok installed" {
		t.Fatalf("after reinstall: status %q", s)
	}

	// The operator's edit and the cache survive a remove.
	conf := filepath.Join(root, "etc/assetd/assetd.toml")
	edited := append(mustRead(t, conf), "# edited by the operator\n"...)
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	blob := filepath.Join(root, "var/lib/assetd/blobs/sha256/ab")
	if err := os.MkdirAll(filepath.Dir(blob), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blob, []byte("cached"), 0o444); err != nil {
		t.Fatal(err)
	}
	pkg("--remove", "assetd")
	if s := status(); s != "deinstall ok config-files" {
		t.Errorf("after remove: status %q", s)
	}
	for rel := range modes {
		if rel != "etc/assetd/assetd.toml" && exists(rel) {
			t.Errorf("remove left %s", rel)
		}
	}
	if !bytes.Equal(mustRead(t, conf), edited) {
		t.Error("remove changed the edited configuration")
	}
	if !exists("var/lib/assetd/blobs/sha256/ab") {
		t.Error("remove deleted the cache")
	}

	t.Log("removed: the binary, units and docs are gone; the edited configuration and the cache stay")

	pkg("--purge", "assetd")
	if s := status(); s != "not installed" && !strings.Contains(s, "not-installed") {
		t.Errorf("after purge: status %q", s)
	}
	var left []string
	filepath.WalkDir(root, func(name string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(root, name)
		if err == nil && strings.Contains(rel, "assetd") && !strings.HasPrefix(rel, "var/lib/dpkg/") {
			left = append(left, rel)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("purge left %q", left)
	}

	t.Log("purged: the configuration, the cache and the unit links are gone (the assetd user stays, as Debian leaves system users)")

	for _, p := range hostPaths {
		_, err := os.Lstat(p)
		if (err == nil) != host[p] {
			t.Errorf("installing into %s changed this machine's %s", root, p)
		}
	}
}

func has(tool string) bool {
	_, err := exec.LookPath(tool)
	return err == nil
}
