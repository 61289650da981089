package systemd_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assetd/assetd/internal/config"
)

// unit is a parsed unit file: section -> key -> values, in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, name string) unit {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	u, section := unit{}, ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: cannot parse %q", name, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// get is the last value of a key, as systemd reads most settings.
func (u unit) get(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func TestServiceSettings(t *testing.T) {
	u := parseUnit(t, "assetd.service")
	want := map[string]string{
		"Type":                     "notify",
		"NotifyAccess":             "main",
		"ExecStart":                "/usr/bin/assetd serve --config " + config.DefaultFile,
		"ExecReload":               "/usr/bin/assetd reload",
		"Restart":                  "on-failure",
		"WatchdogSec":              "30s",
		"User":                     "assetd",
		"Group":                    "assetd",
		"DynamicUser":              "no",
		"StateDirectory":           "assetd",
		"RuntimeDirectory":         "assetd",
		"RuntimeDirectoryPreserve": "yes",
		"ConfigurationDirectory":   "assetd",
		"LoadCredential":           "session-token:/etc/assetd/session-token",
		"SetCredential":            `session-token:\n`,
		"UMask":                    "0027",
		"ProtectSystem":            "strict",
		"ProtectHome":              "yes",
		"NoNewPrivileges":          "yes",
		"PrivateTmp":               "yes",
		"PrivateDevices":           "yes",
		"RestrictAddressFamilies":  "AF_UNIX AF_INET AF_INET6",
		"SystemCallArchitectures":  "native",
		"CapabilityBoundingSet":    "",
		"LockPersonality":          "yes",
		"MemoryDenyWriteExecute":   "yes",
		"RestrictNamespaces":       "yes",
		"RestrictRealtime":         "yes",
		"RestrictSUIDSGID":         "yes",
		"ProtectKernelTunables":    "yes",
		"ProtectKernelModules":     "yes",
		"ProtectKernelLogs":        "yes",
		"ProtectControlGroups":     "yes",
		"ProtectClock":             "yes",
		"ProtectHostname":          "yes",
	}
	for k, v := range want {
		if _, ok := u["Service"][k]; !ok {
			t.Errorf("[Service] has no %s=", k)
		} else if got := u.get("Service", k); got != v {
			t.Errorf("%s=%s, want %s", k, got, v)
		}
	}
	if got := u["Service"]["SystemCallFilter"]; len(got) == 0 || got[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%v, want @system-service first", got)
	}
	// StateDirectory=assetd is /var/lib/assetd: the default store.dir.
	if d := config.Default().Store.Dir; d != "/var/lib/"+u.get("Service", "StateDirectory") {
		t.Errorf("store.dir default %s is not the unit's StateDirectory", d)
	}
}

func TestSocketMatchesConfig(t *testing.T) {
	u := parseUnit(t, "assetd.socket")
	def := config.Default().API
	for k, v := range map[string]string{
		"ListenStream": def.Socket,
		"SocketMode":   def.SocketMode.String(),
		"SocketUser":   "assetd",
		"SocketGroup":  "assetd",
	} {
		if got := u.get("Socket", k); got != v {
			t.Errorf("%s=%s, want %s", k, got, v)
		}
	}
	// The socket lives in the service's RuntimeDirectory.
	svc := parseUnit(t, "assetd.service")
	if dir := "/run/" + svc.get("Service", "RuntimeDirectory"); filepath.Dir(def.Socket) != dir {
		t.Errorf("socket %s is not in RuntimeDirectory %s", def.Socket, dir)
	}
}

func tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not found: install systemd (apt-get install -y systemd) to check the units with it", name)
	}
	return p
}

func runTool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_COLOR=0", "SYSTEMD_PAGER=", "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestVerify runs systemd-analyze verify on both units. It points ExecStart
// at a binary that exists (this test's own), since /usr/bin/assetd is not
// installed here; everything else is checked as shipped. Any warning fails.
func TestVerify(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	dir := t.TempDir()
	bin, err := os.Executable()
	if err != nil || strings.ContainsAny(bin, " %\\\"'") {
		if bin, err = exec.LookPath("true"); err != nil {
			t.Skip("no executable to stand in for /usr/bin/assetd")
		}
	}
	svc, err := os.ReadFile("assetd.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, exe := range []string{"ExecStart=/usr/bin/assetd ", "ExecReload=/usr/bin/assetd "} {
		if !bytes.Contains(svc, []byte(exe)) {
			t.Fatalf("assetd.service has no %q", exe)
		}
		svc = bytes.Replace(svc, []byte(exe), []byte(strings.Replace(exe, "/usr/bin/assetd", bin, 1)), 1)
	}
	sock, err := os.ReadFile("assetd.socket")
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"assetd.service": svc, "assetd.socket": sock} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := runTool(t, analyze, "verify", "--man=no", "--generators=no",
		filepath.Join(dir, "assetd.socket"), filepath.Join(dir, "assetd.service"))
	if strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify warns:\n%s", out)
	}
}

// TestSysusers creates the user in a scratch root with systemd-sysusers.
func TestSysusers(t *testing.T) {
	sysusers := tool(t, "systemd-sysusers")
	root := t.TempDir()
	install(t, "assetd.sysusers", filepath.Join(root, "usr/lib/sysusers.d/assetd.conf"))
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	runTool(t, sysusers, "--root="+root)
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(passwd), "assetd:x:") || !strings.Contains(string(passwd), ":/var/lib/assetd:/usr/sbin/nologin") {
		t.Errorf("no assetd user made:\n%s", passwd)
	}
}

// TestTmpfiles applies the tmpfiles.d snippet to a scratch root. It chowns
// to root, so it needs root.
func TestTmpfiles(t *testing.T) {
	tmpfiles := tool(t, "systemd-tmpfiles")
	if os.Geteuid() != 0 {
		t.Skip("systemd-tmpfiles --create chowns to root: run as root to check assetd.tmpfiles")
	}
	root := t.TempDir()
	install(t, "assetd.tmpfiles", filepath.Join(root, "usr/lib/tmpfiles.d/assetd.conf"))
	install(t, "../configs/assetd.toml", filepath.Join(root, "usr/share/assetd/assetd.toml"))
	out := runTool(t, tmpfiles, "--root="+root, "--create")
	if strings.TrimSpace(out) != "" {
		t.Errorf("systemd-tmpfiles warns:\n%s", out)
	}
	if fi, err := os.Stat(filepath.Join(root, "etc/assetd")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("/etc/assetd not made as 0755: %v %v", fi, err)
	}
	// The copied example is a valid configuration: the defaults.
	if _, err := config.Load(filepath.Join(root, "etc/assetd/assetd.toml"), nil); err != nil {
		t.Errorf("the installed configuration does not load: %v", err)
	}
}

func install(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
