package systemd_test

// TestBoot is `make systemd-test`: the Debian package installed with apt in
// a booted Debian (bookworm, built with mmdebstrap from the host's own apt
// sources, cached between runs), under a real systemd started by
// systemd-nspawn. It needs root; it installs systemd-container and
// mmdebstrap when they are missing. Where a container cannot boot it skips
// and says why, unless ASSETD_REQUIRE_SYSTEMD=1 (CI), where a skip fails.
// Each check is a subtest; the list of PASS and FAIL lines ends the output.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/packaging"
)

const (
	bootSuite = "bookworm"
	// The host's own apt sources: no mirror is named here.
	bootSources = "/etc/apt/sources.list.d/debian.sources"
	// Where the built root file systems are kept, one per package list.
	bootCache = "/var/cache/assetd-systemd-test"
	// The two packages: the second is the upgrade.
	bootVersion1 = "0.0~boot1"
	bootVersion2 = "0.0~boot2"
	originPort   = "8080"
	appID        = "boot-test"
)

var bootPackages = []string{"systemd", "systemd-sysv", "dbus", "procps"}

// skipper skips with a reason, or fails when ASSETD_REQUIRE_SYSTEMD=1.
func skipper(t *testing.T) func(format string, args ...any) {
	return func(format string, args ...any) {
		t.Helper()
		msg := fmt.Sprintf(format, args...)
		if os.Getenv("ASSETD_REQUIRE_SYSTEMD") == "1" {
			t.Fatalf("ASSETD_REQUIRE_SYSTEMD=1 and the systemd test cannot run: %s", msg)
		}
		t.Skipf("systemd test skipped: %s", msg)
	}
}

func TestBoot(t *testing.T) {
	if os.Getenv("ASSETD_SYSTEMD_TEST") != "1" {
		t.Skip("set ASSETD_SYSTEMD_TEST=1 (make systemd-test) to boot the package under systemd in a container")
	}
	skip := skipper(t)
	if runtime.GOOS != "linux" {
		skip("needs Linux, not %s", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		skip("needs root (systemd-nspawn, mmdebstrap): run make systemd-test as root")
	}
	start := time.Now()
	bootTools(t, skip)
	debs := buildPackages(t)
	root := rootfs(t, skip)
	signer := prepareRoot(t, root, debs)
	c := boot(t, root, skip)

	r := &results{}
	defer func() { r.print(t, time.Since(start)) }()
	check := func(name string, f func(t *testing.T)) bool {
		ok := t.Run(name, func(t *testing.T) {
			f(t)
			if t.Failed() {
				t.Logf("journal of assetd:\n%s", c.out("journalctl", "--no-pager", "-n", "40", "-u", "assetd.service", "-u", "assetd.socket"))
			}
		})
		r.add(name, ok)
		return ok
	}

	if !check("install: units active after apt install", func(t *testing.T) {
		c.must(t, "apt-get", "install", "-y", "-q", "/srv/debs/"+debs[0].name)
		c.waitActive(t, "assetd.socket")
		c.waitActive(t, "assetd.service")
		if got := c.out("systemctl", "is-enabled", "assetd.service"); got != "enabled" {
			t.Errorf("assetd.service is %q, want enabled", got)
		}
		for _, f := range []string{"/usr/share/man/man1/assetd.1.gz", "/usr/share/man/man1/assetd-reload.1.gz",
			"/usr/share/man/man5/assetd.toml.5.gz", "/usr/share/bash-completion/completions/assetd",
			"/usr/share/zsh/vendor-completions/_assetd", "/usr/share/fish/vendor_completions.d/assetd.fish"} {
			if _, err := c.run("test", "-s", f); err != nil {
				t.Errorf("%s not installed", f)
			}
		}
	}) {
		t.FailNow()
	}

	check("sysusers: user and group assetd", func(t *testing.T) {
		pw := c.must(t, "getent", "passwd", "assetd")
		if f := strings.Split(pw, ":"); len(f) != 7 || f[5] != "/var/lib/assetd" || f[6] != "/usr/sbin/nologin" {
			t.Errorf("passwd entry %q: want home /var/lib/assetd, shell /usr/sbin/nologin", pw)
		} else if uid, _ := strconv.Atoi(f[2]); uid == 0 || uid >= 1000 {
			t.Errorf("assetd has uid %d, not a system uid", uid)
		}
		c.must(t, "getent", "group", "assetd")
	})

	check("tmpfiles and unit directories: owners and modes", func(t *testing.T) {
		for path, want := range map[string]string{
			"/etc/assetd":             "755 root root directory",
			"/etc/assetd/assetd.toml": "644 root root regular file",
			"/var/lib/assetd":         "750 assetd assetd directory",
			"/run/assetd":             "755 assetd assetd directory",
		} {
			if got := c.out("stat", "-c", "%a %U %G %F", path); got != want {
				t.Errorf("%s: %q, want %q", path, got, want)
			}
		}
	})

	check("socket: /run/assetd/assetd.sock 0660 assetd:assetd", func(t *testing.T) {
		if got, want := c.out("stat", "-c", "%a %U %G %F", "/run/assetd/assetd.sock"), "660 assetd assetd socket"; got != want {
			t.Errorf("socket: %q, want %q", got, want)
		}
	})

	check("notify: READY and STATUS", func(t *testing.T) {
		// A Type=notify service is active (running) only after READY=1.
		if got := c.show("assetd.service", "ActiveState", "SubState"); got != "active\nrunning" {
			t.Errorf("state %q, want active and running", got)
		}
		if got := c.show("assetd.service", "StatusText"); !strings.HasPrefix(got, "serving on /run/assetd/assetd.sock") {
			t.Errorf("STATUS %q, want serving on /run/assetd/assetd.sock", got)
		}
	})

	check("socket activation: a client command starts the stopped service", func(t *testing.T) {
		c.must(t, "systemctl", "stop", "assetd.service")
		if got := c.out("systemctl", "is-active", "assetd.service"); got != "inactive" {
			t.Fatalf("after stop the service is %q", got)
		}
		if got := c.out("systemctl", "is-active", "assetd.socket"); got != "active" {
			t.Fatalf("after stop the socket is %q", got)
		}
		c.must(t, "assetd", "stats")
		c.waitActive(t, "assetd.service")
	})

	origin := false
	check("origin: assetd origin serves the published tree in the container", func(t *testing.T) {
		c.must(t, "systemd-run", "--unit=boot-test-origin", "--property=Restart=no",
			"/usr/bin/assetd", "origin", "--root", "/srv/origin/site", "--listen", "127.0.0.1:"+originPort,
			"--app-ids", "/srv/origin/app-ids.txt")
		c.waitFor(t, "the origin to listen", func() bool {
			_, err := c.run("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/"+originPort)
			return err == nil
		})
		origin = true
	})

	config := fmt.Sprintf(`[origin]
url = "http://127.0.0.1:%s"
app_id = %q
trusted_keys = [%q]

[preload]
avatars = ["rohan"]
`, originPort, appID, signer)
	check("reload: systemctl reload applies a good configuration", func(t *testing.T) {
		before := c.show("assetd.service", "MainPID")
		writeFile(t, root, "/etc/assetd/assetd.toml", config, 0o644)
		c.must(t, "systemctl", "reload", "assetd.service")
		if after := c.show("assetd.service", "MainPID"); after != before {
			t.Errorf("reload restarted the daemon: MainPID %s, then %s", before, after)
		}
		c.waitFor(t, "the reloaded configuration's preload of rohan", func() bool {
			return strings.Contains(c.out("assetd", "ls"), "rohan")
		})
	})

	check("preload: from the origin through the hardened unit", func(t *testing.T) {
		if !origin {
			t.Skip("no origin")
		}
		c.must(t, "assetd", "preload", "mei", "aria")
		ls := c.must(t, "assetd", "ls")
		for _, id := range []string{"rohan", "mei", "aria"} {
			if !strings.Contains(ls, id) {
				t.Errorf("assetd ls does not list %s:\n%s", id, ls)
			}
		}
	})

	check("reload: systemctl reload fails on a refused configuration", func(t *testing.T) {
		before := c.show("assetd.service", "MainPID")
		writeFile(t, root, "/etc/assetd/assetd.toml", config+"\n[fetch]\nconcurrency = 0\n", 0o644)
		out, err := c.run("systemctl", "reload", "assetd.service")
		if err == nil {
			t.Errorf("systemctl reload exited 0 on a refused configuration:\n%s", out)
		}
		if got := c.show("assetd.service", "ActiveState"); got != "active" {
			t.Errorf("after a refused reload the service is %s", got)
		}
		if after := c.show("assetd.service", "MainPID"); after != before {
			t.Errorf("a refused reload restarted the daemon: MainPID %s, then %s", before, after)
		}
		if j := c.out("journalctl", "--no-pager", "-u", "assetd.service", "-n", "30"); !strings.Contains(j, "concurrency") {
			t.Errorf("the journal does not name the refused key:\n%s", j)
		}
		writeFile(t, root, "/etc/assetd/assetd.toml", config, 0o644)
		c.must(t, "systemctl", "reload", "assetd.service")
	})

	check("access: a member of group assetd may use it, others may not", func(t *testing.T) {
		c.must(t, "useradd", "--create-home", "--groups", "assetd", "alice")
		c.must(t, "useradd", "--create-home", "bob")
		if out, err := c.as("alice", "assetd", "ls"); err != nil {
			t.Errorf("alice (group assetd): assetd ls: %v\n%s", err, out)
		}
		if out, err := c.as("alice", "assetd", "stats"); err != nil {
			t.Errorf("alice (group assetd): assetd stats: %v\n%s", err, out)
		}
		if out, err := c.as("bob", "assetd", "ls"); err == nil {
			t.Errorf("bob (not in group assetd): assetd ls succeeded:\n%s", out)
		}
		// The shells' completion offers the cached IDs (cobra's __complete).
		if out, err := c.as("alice", "assetd", "__complete", "get", ""); err != nil || !strings.Contains(out, "rohan\n") {
			t.Errorf("alice: completion of assetd get offers no cached ID: %v\n%s", err, out)
		}
	})

	check("import: from a user's home directory under ProtectHome", func(t *testing.T) {
		dir := "/home/alice/avatar"
		writeFile(t, root, dir+"/manifest-free/body.bin", strings.Repeat("assetd boot test\n", 1000), 0o644)
		writeFile(t, root, dir+"/hello.txt", "hello from alice's home\n", 0o644)
		c.must(t, "chown", "-R", "alice:alice", dir)
		c.must(t, "chmod", "0700", "/home/alice")
		if out, err := c.as("alice", "assetd", "import", "alice-avatar", dir); err != nil {
			t.Fatalf("alice: assetd import alice-avatar %s: %v\n%s", dir, err, out)
		}
		if ls := c.out("assetd", "ls"); !strings.Contains(ls, "alice-avatar") {
			t.Errorf("the imported avatar is not listed:\n%s", ls)
		}
	})

	check("watchdog: a stopped (SIGSTOP) daemon is restarted", func(t *testing.T) {
		// The shipped WatchdogSec is 30s; a drop-in shortens it so that the
		// check takes seconds. The mechanism is the same.
		const dropin = "/etc/systemd/system/assetd.service.d/50-boot-test-watchdog.conf"
		writeFile(t, root, dropin, "[Service]\nWatchdogSec=6s\n", 0o644)
		defer func() {
			os.Remove(filepath.Join(root, dropin))
			c.run("systemctl", "daemon-reload")
			c.run("systemctl", "restart", "assetd.service")
		}()
		c.must(t, "systemctl", "daemon-reload")
		c.must(t, "systemctl", "restart", "assetd.service")
		c.waitActive(t, "assetd.service")
		// Pings keep it alive longer than a watchdog period: every loop
		// the pings wait on turns under the real unit.
		inv, pid := c.show("assetd.service", "InvocationID"), c.show("assetd.service", "MainPID")
		time.Sleep(8 * time.Second)
		if got := c.show("assetd.service", "InvocationID"); got != inv {
			t.Fatalf("a daemon that was not stopped was restarted (%s, then %s)", inv, got)
		}
		c.must(t, "kill", "-STOP", pid)
		c.waitFor(t, "a new daemon after the watchdog fired", func() bool {
			return c.show("assetd.service", "InvocationID") != inv && c.show("assetd.service", "ActiveState") == "active"
		})
		j := c.out("journalctl", "--no-pager", "-u", "assetd.service")
		if !strings.Contains(j, "Watchdog timeout") {
			t.Errorf("the journal has no watchdog timeout:\n%s", j)
		}
		// The abort's goroutine dump (docs/operations.md) is in the journal.
		if _, after, _ := strings.Cut(j, "Watchdog timeout"); !strings.Contains(after, "SIGABRT: abort") || !strings.Contains(after, "goroutine ") {
			t.Errorf("no goroutine dump after the watchdog's SIGABRT:\n%s", after)
		}
		if ls := c.out("assetd", "ls"); !strings.Contains(ls, "rohan") {
			t.Errorf("after the restart the cache is not served:\n%s", ls)
		}
	})

	check("security: systemd-analyze security assetd.service at most 1.5", func(t *testing.T) {
		out := c.must(t, "systemd-analyze", "security", "--no-pager", "assetd.service")
		m := regexp.MustCompile(`Overall exposure level for assetd\.service: ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no exposure level in:\n%s", out)
		}
		score, _ := strconv.ParseFloat(m[1], 64)
		t.Logf("exposure level %s", m[1])
		if score > 1.5 {
			t.Errorf("exposure level %s, want at most 1.5", m[1])
		}
	})

	cfgSum := func(t *testing.T) string { return c.must(t, "sha256sum", "/etc/assetd/assetd.toml") }
	check("upgrade: restarts the daemon, keeps config and cache", func(t *testing.T) {
		sum, inv := cfgSum(t), c.show("assetd.service", "InvocationID")
		c.must(t, "apt-get", "install", "-y", "-q", "/srv/debs/"+debs[1].name)
		if got := c.out("dpkg-query", "-W", "-f=${Version}", "assetd"); got != bootVersion2 {
			t.Errorf("installed version %q, want %s", got, bootVersion2)
		}
		c.waitActive(t, "assetd.service")
		if got := c.show("assetd.service", "InvocationID"); got == inv {
			t.Errorf("the daemon was not restarted by the upgrade")
		}
		if got := cfgSum(t); got != sum {
			t.Errorf("the upgrade changed /etc/assetd/assetd.toml")
		}
		if ls := c.out("assetd", "ls"); !strings.Contains(ls, "rohan") || !strings.Contains(ls, "mei") {
			t.Errorf("after the upgrade the cache lost avatars:\n%s", ls)
		}
	})

	check("remove: stops the units, keeps config and cache", func(t *testing.T) {
		sum := cfgSum(t)
		c.must(t, "apt-get", "remove", "-y", "-q", "assetd")
		for _, u := range []string{"assetd.service", "assetd.socket"} {
			if got := c.out("systemctl", "is-active", u); got == "active" {
				t.Errorf("%s still active after remove", u)
			}
		}
		if _, err := c.run("test", "-e", "/usr/bin/assetd"); err == nil {
			t.Errorf("/usr/bin/assetd stays after remove")
		}
		if got := cfgSum(t); got != sum {
			t.Errorf("remove changed /etc/assetd/assetd.toml")
		}
		if got := c.out("find", "/var/lib/assetd", "-type", "f"); got == "" {
			t.Errorf("remove emptied the cache")
		}
	})

	check("purge: removes config and cache", func(t *testing.T) {
		c.must(t, "apt-get", "purge", "-y", "-q", "assetd")
		for _, p := range []string{"/etc/assetd", "/var/lib/assetd"} {
			if _, err := c.run("test", "-e", p); err == nil {
				t.Errorf("%s stays after purge", p)
			}
		}
	})
}

// results is the PASS/FAIL list printed at the end.
type results struct {
	mu    sync.Mutex
	lines []string
}

func (r *results) add(name string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	verdict := "PASS"
	if !ok {
		verdict = "FAIL"
	}
	r.lines = append(r.lines, verdict+"  "+name)
}

func (r *results) print(t *testing.T, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Printf("\nsystemd test (%s, %s):\n%s\n\n", bootSuite, took.Round(time.Second), strings.Join(r.lines, "\n"))
}

// bootTools installs systemd-nspawn and mmdebstrap when they are missing.
func bootTools(t *testing.T, skip func(string, ...any)) {
	var missing []string
	for tool, pkg := range map[string]string{"systemd-nspawn": "systemd-container", "mmdebstrap": "mmdebstrap", "nsenter": "util-linux", "dpkg-deb": "dpkg", "pgrep": "procps"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		return
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		skip("%s missing and no apt-get to install them", strings.Join(missing, ", "))
	}
	t.Logf("installing %s", strings.Join(missing, " "))
	for _, args := range [][]string{{"update", "-qq"}, append([]string{"install", "-y", "-qq"}, missing...)} {
		cmd := exec.Command("apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			skip("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

type deb struct{ path, name string }

// buildPackages builds the static binary for this machine and the two
// packages (mkdeb's code), the second one a later version.
func buildPackages(t *testing.T) []deb {
	dir := t.TempDir()
	bin := filepath.Join(dir, "assetd")
	goCmd(t, "build", "-trimpath", "-o", bin, "../cmd/assetd")
	docs := filepath.Join(dir, "docs")
	goCmd(t, "run", "-tags", "docgen", "-trimpath", "../cmd/assetd", "docgen", docs)
	var out []deb
	for _, v := range []string{bootVersion1, bootVersion2} {
		p := packaging.Package{Version: v, Maintainer: "assetd boot test <root@localhost>", Epoch: time.Unix(1_700_000_000, 0)}
		path, err := packaging.Build(context.Background(), p, packaging.Sources{Binary: bin, Repo: "..", Docs: docs}, dir)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, deb{path: path, name: filepath.Base(path)})
	}
	return out
}

func goCmd(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// rootfs unpacks the cached root file system for this package list and
// these apt sources, building it with mmdebstrap first when it is missing.
func rootfs(t *testing.T, skip func(string, ...any)) string {
	sources, err := os.ReadFile(bootSources)
	if err != nil {
		skip("no %s (a Debian host's apt sources): %v", bootSources, err)
	}
	key := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s", bootSuite, runtime.GOARCH, strings.Join(bootPackages, ","), sources))
	cacheDir := filepath.Join(bootCache, fmt.Sprintf("%s-%x", bootSuite, key[:6]))
	tarball := filepath.Join(cacheDir, "rootfs.tar")
	if _, err := os.Stat(tarball); err != nil {
		if err := os.MkdirAll(cacheDir, 0o755); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(cacheDir, "rootfs.partial.tar")
		t.Logf("building the %s root file system (cached in %s)", bootSuite, cacheDir)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "mmdebstrap", "--quiet", "--variant=minbase", "--format=tar",
			"--include="+strings.Join(bootPackages, ","), bootSuite, tmp, bootSources)
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp)
			skip("mmdebstrap could not build a %s root: %v\n%s", bootSuite, err, out)
		}
		if err := os.Rename(tmp, tarball); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "-C", root, "-xf", tarball).CombinedOutput(); err != nil {
		t.Fatalf("unpacking %s: %v\n%s", tarball, err, out)
	}
	return root
}

// prepareRoot puts the packages and a signed origin tree (published with
// the built binary) into the root, and returns the signing public key.
func prepareRoot(t *testing.T, root string, debs []deb) string {
	for _, d := range debs {
		data, err := os.ReadFile(d.path)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, root, "/srv/debs/"+d.name, string(data), 0o644)
	}
	bin := filepath.Join(filepath.Dir(debs[0].path), "assetd")
	work := t.TempDir()
	run := func(args ...string) {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Fatalf("assetd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("samples", filepath.Join(work, "src"))
	run("keygen", "--out", filepath.Join(work, "signing"))
	run("publish", filepath.Join(work, "src"), filepath.Join(root, "srv/origin/site"), "--sign", filepath.Join(work, "signing.key"))
	writeFile(t, root, "/srv/origin/app-ids.txt", appID+"\n", 0o644)
	pub, err := os.ReadFile(filepath.Join(work, "signing.pub"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(pub))
}

// writeFile writes a file into the container's root from outside.
func writeFile(t *testing.T, root, name, data string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// container is a booted systemd-nspawn container.
type container struct {
	pid1 int
}

// boot starts the container and waits for its systemd to finish booting.
// The test's cleanup stops it.
func boot(t *testing.T, root string, skip func(string, ...any)) *container {
	name := fmt.Sprintf("assetd-boot-%d", os.Getpid())
	cmd := exec.Command("systemd-nspawn", "-D", root, "--boot", "--register=no", "--keep-unit",
		"--private-network", "--machine="+name, "--console=pipe", "--quiet")
	var log bytes.Buffer
	var logMu sync.Mutex
	cmd.Stdout = lockedWriter{&logMu, &log}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		skip("systemd-nspawn: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	nspawnLog := func() string { logMu.Lock(); defer logMu.Unlock(); return log.String() }
	deadline := time.Now().Add(time.Minute)
	c := &container{}
	for c.pid1 == 0 {
		select {
		case err := <-exited:
			exited <- err
			skip("systemd-nspawn cannot boot a container here: %v\n%s", err, nspawnLog())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no systemd in the container after a minute:\n%s", nspawnLog())
		}
		out, _ := exec.Command("pgrep", "-P", strconv.Itoa(cmd.Process.Pid), "-x", "systemd").Output()
		c.pid1, _ = strconv.Atoi(strings.TrimSpace(string(out)))
	}
	// PID 1 answers on its bus a moment after it starts; before it has
	// made /run/systemd/system, systemctl says "offline".
	var state string
	for {
		state, _ = c.run("systemctl", "is-system-running", "--wait")
		if state == "running" || state == "degraded" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if state != "running" && state != "degraded" {
		t.Fatalf("the container's systemd is %q:\n%s", state, nspawnLog())
	}
	if state == "degraded" {
		t.Logf("the container booted degraded:\n%s", c.out("systemctl", "--failed", "--no-pager"))
	}
	return c
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// run runs a command in the container as root, with a clean environment,
// and returns its output, trimmed.
func (c *container) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	argv := append([]string{"-t", strconv.Itoa(c.pid1), "-a", "env", "-i",
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C", "HOME=/root", "TERM=dumb",
		"SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", "DEBIAN_FRONTEND=noninteractive"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", argv...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// out is run's output, whatever the exit status.
func (c *container) out(args ...string) string {
	out, _ := c.run(args...)
	return out
}

// must runs a command that must succeed.
func (c *container) must(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(args...)
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// as runs a command as user, with the user's groups (setpriv: no PAM).
func (c *container) as(user string, args ...string) (string, error) {
	return c.run(append([]string{"setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "--",
		"env", "HOME=/home/" + user, "USER=" + user}, args...)...)
}

// show is systemctl show's values of the properties, one a line.
func (c *container) show(unit string, props ...string) string {
	args := []string{"systemctl", "show", unit, "--value"}
	for _, p := range props {
		args = append(args, "-p", p)
	}
	return c.out(args...)
}

// waitFor polls cond every 100ms for at most a minute.
func (c *container) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited a minute for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *container) waitActive(t *testing.T, unit string) {
	t.Helper()
	c.waitFor(t, unit+" to be active", func() bool {
		return c.out("systemctl", "is-active", unit) == "active"
	})
}
