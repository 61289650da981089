package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// stubbed is a place to run the maintainer scripts: every tool they call
// is a stub that logs its arguments, and "a running systemd" is a
// directory the test makes or not.
type stubbed struct {
	t       *testing.T
	dir     string
	log     string
	systemd string // stands in for /run/systemd/system
	scripts map[string][]byte
}

var stubbedTools = []string{"systemctl", "deb-systemd-helper", "deb-systemd-invoke", "systemd-sysusers", "systemd-tmpfiles", "useradd"}

func newStubbed(t *testing.T, running bool) *stubbed {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	s := &stubbed{t: t, dir: t.TempDir()}
	s.log = filepath.Join(s.dir, "calls")
	s.systemd = filepath.Join(s.dir, "run-systemd-system")
	if running {
		if err := os.Mkdir(s.systemd, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bin := filepath.Join(s.dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tool := range stubbedTools {
		// was-enabled answers as $WAS_ENABLED says (default: yes).
		stub := "#!/bin/sh\necho \"" + tool + " $*\" >> \"$STUB_LOG\"\n" +
			"case \"$*\" in *was-enabled*) [ \"${WAS_ENABLED:-yes}\" = yes ] ;; esac\n"
		if err := os.WriteFile(filepath.Join(bin, tool), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if s.scripts, err = Scripts(); err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs a maintainer script with args and returns the tools it called.
func (s *stubbed) run(env []string, name string, args ...string) []string {
	s.t.Helper()
	os.Remove(s.log)
	script := strings.ReplaceAll(string(s.scripts[name]), "/run/systemd/system", s.systemd)
	cmd := exec.Command("sh", append([]string{"-c", script, name}, args...)...)
	cmd.Env = append([]string{
		"PATH=" + filepath.Join(s.dir, "bin") + ":" + os.Getenv("PATH"),
		"STUB_LOG=" + s.log,
	}, env...)
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		s.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	data, err := os.ReadFile(s.log)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

func TestScriptsSyntax(t *testing.T) {
	scripts, err := Scripts()
	if err != nil {
		t.Fatal(err)
	}
	shellcheck, _ := exec.LookPath("shellcheck")
	for name, data := range scripts {
		if !strings.HasPrefix(string(data), "#!/bin/sh\n") || !strings.Contains(string(data), "\nset -e\n") {
			t.Errorf("%s: want #!/bin/sh and set -e", name)
		}
		if out, err := exec.Command("sh", "-n", "-c", string(data)).CombinedOutput(); err != nil {
			t.Errorf("%s: sh -n: %v\n%s", name, err, out)
		}
		if shellcheck == "" {
			continue
		}
		cmd := exec.Command(shellcheck, "-s", "sh", "-")
		cmd.Stdin = strings.NewReader(string(data))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: shellcheck: %v\n%s", name, err, out)
		}
	}
	if shellcheck == "" {
		t.Log("shellcheck not found: the scripts were checked with sh -n only")
	}
}

// TestScriptsInRoot runs the scripts the way dpkg --root runs them: with
// DPKG_ROOT set, acting on that root and starting nothing.
func TestScriptsInRoot(t *testing.T) {
	s := newStubbed(t, true)
	root := t.TempDir()
	env := []string{"DPKG_ROOT=" + root}

	got := s.run(env, "postinst", "configure")
	want := []string{
		"systemd-sysusers --root=" + root + " assetd.conf",
		"systemd-tmpfiles --root=" + root + " --create assetd.conf",
		"deb-systemd-helper unmask assetd.service",
		"deb-systemd-helper --quiet was-enabled assetd.service",
		"deb-systemd-helper enable assetd.service",
	}
	if !slices.Equal(got, want) {
		t.Errorf("postinst configure:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// An upgrade of a service the operator disabled keeps it disabled.
	got = s.run(append(env, "WAS_ENABLED=no"), "postinst", "configure", "0.9")
	if !slices.Contains(got, "deb-systemd-helper update-state assetd.service") || slices.Contains(got, "deb-systemd-helper enable assetd.service") {
		t.Errorf("postinst upgrade of a disabled service:\n%s", strings.Join(got, "\n"))
	}
	if got := s.run(env, "postinst", "triggered", "x"); got != nil {
		t.Errorf("postinst triggered called %q", got)
	}
	if got := s.run(env, "prerm", "remove"); got != nil {
		t.Errorf("prerm remove in a root called %q", got)
	}

	cache := filepath.Join(root, "var/lib/assetd/blobs/sha256/ab")
	token := filepath.Join(root, "etc/assetd/session-token")
	for _, f := range []string{cache, token} {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.run(env, "postrm", "remove"); !slices.Equal(got, []string{"deb-systemd-helper mask assetd.service"}) {
		t.Errorf("postrm remove called %q", got)
	}
	for _, f := range []string{cache, token} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("remove (not purge) lost %s: %v", f, err)
		}
	}
	if got := s.run(env, "postrm", "upgrade", "1.0"); got != nil {
		t.Errorf("postrm upgrade called %q", got)
	}
	got = s.run(env, "postrm", "purge")
	if !slices.Equal(got, []string{"deb-systemd-helper purge assetd.service", "deb-systemd-helper unmask assetd.service"}) {
		t.Errorf("postrm purge called %q", got)
	}
	for _, gone := range []string{"var/lib/assetd", "etc/assetd"} {
		if _, err := os.Stat(filepath.Join(root, gone)); !os.IsNotExist(err) {
			t.Errorf("purge left %s: %v", gone, err)
		}
	}
}

// TestScriptsOnSystemd runs them as on a machine booted with systemd (the
// stand-in directory exists, DPKG_ROOT is unset). Purge is not run here:
// it would remove this machine's /var/lib/assetd.
func TestScriptsOnSystemd(t *testing.T) {
	s := newStubbed(t, true)
	got := s.run(nil, "postinst", "configure")
	want := []string{
		"systemd-sysusers assetd.conf",
		"systemd-tmpfiles --create assetd.conf",
		"deb-systemd-helper unmask assetd.service",
		"deb-systemd-helper --quiet was-enabled assetd.service",
		"deb-systemd-helper enable assetd.service",
		"systemctl --system daemon-reload",
		"deb-systemd-invoke start assetd.socket assetd.service",
	}
	if !slices.Equal(got, want) {
		t.Errorf("postinst configure (install):\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got = s.run(nil, "postinst", "configure", "0.9")
	if i := slices.Index(got, "deb-systemd-invoke restart assetd.service"); i < 0 || !slices.Contains(got[i:], "deb-systemd-invoke start assetd.socket assetd.service") {
		t.Errorf("postinst configure (upgrade) must restart the service:\n%s", strings.Join(got, "\n"))
	}
	if got := s.run(nil, "prerm", "remove"); !slices.Equal(got, []string{"deb-systemd-invoke stop assetd.service assetd.socket"}) {
		t.Errorf("prerm remove called %q", got)
	}
	if got := s.run(nil, "prerm", "upgrade", "1.0"); got != nil {
		t.Errorf("prerm upgrade stopped the daemon: %q", got)
	}
	if got := s.run(nil, "postrm", "remove"); !slices.Equal(got, []string{"systemctl --system daemon-reload", "deb-systemd-helper mask assetd.service"}) {
		t.Errorf("postrm remove called %q", got)
	}

	// Without a running systemd (a chroot, a container): enable, never start.
	s = newStubbed(t, false)
	for _, args := range [][]string{{"postinst", "configure"}, {"postinst", "configure", "0.9"}, {"prerm", "remove"}, {"postrm", "remove"}} {
		for _, call := range s.run(nil, args[0], args[1:]...) {
			if strings.HasPrefix(call, "systemctl") || strings.HasPrefix(call, "deb-systemd-invoke") {
				t.Errorf("%s without systemd called %q", strings.Join(args, " "), call)
			}
		}
	}
}
