package e2e

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// TestHintsFollowTheCause (issue 14 item 4): what the CLI prints after an
// error is the next step in assetd's terms, chosen by the cause and
// filled with the daemon's configuration, not the SDK's recovery text.
func TestHintsFollowTheCause(t *testing.T) {
	t.Parallel()
	big := newAvatar(t, "big", 200<<10)
	o := newOrigin(t, big)
	e := newEnv(t, o)
	e.Write(e.Config, e.ConfigText(testkit.Config{OriginURL: "", MaxRetries: 1}))
	p := e.Start()

	_, errOut, _ := e.CLI("preload", "aria")
	if want := "(set origin.url in " + e.Config + ")"; !strings.Contains(errOut, want) {
		t.Errorf("preload with no origin.url: stderr lacks %q:\n%s", want, errOut)
	}
	_, errOut, _ = e.CLI("get", "nobody")
	if want := "(run: assetd preload nobody)"; !strings.Contains(errOut, want) || strings.Contains(errOut, "AvatarManager") {
		t.Errorf("get nobody: stderr lacks %q or speaks SDK:\n%s", want, errOut)
	}
	p.Stop()

	e.Write(e.Config, e.ConfigText(testkit.Config{OriginURL: o.URL(), MaxRetries: 1, MaxBytes: "64KiB"}))
	p = e.Start()
	defer p.Stop()
	_, errOut, _ = e.CLI("preload", "big")
	for _, want := range []string{
		"(raise store.max_bytes (now 64.0 KiB; this avatar needs 200.0 KiB))",
		"200.0 KiB more needed, but the cache would hold 200.0 KiB of its 64.0 KiB quota (store.max_bytes)",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("preload over the quota: stderr lacks %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "Check network connectivity") {
		t.Errorf("preload over the quota blames the network:\n%s", errOut)
	}
}

// TestWrongOriginURLIsNotAWrongID (issue 14 item 3): a 404 without an
// origin's error body (a plain web server, a wrong path prefix) and an
// HTML page (a captive portal) name the URL asked and origin.url, and the
// hint points at origin.url, not at the avatar ID.
func TestWrongOriginURLIsNotAWrongID(t *testing.T) {
	t.Parallel()
	src, site := filepath.Join(testkit.ShortDir(t), "src"), filepath.Join(testkit.ShortDir(t), "site")
	writeRandom(t, filepath.Join(src, "aria", "model.bin"), 4<<10)
	if err := os.WriteFile(filepath.Join(src, "aria", "VERSION"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	publish(t, src, site)
	originURL := testkit.StartOriginCmd(t, site, waitLimit)
	static := httptest.NewServer(http.FileServer(http.Dir(t.TempDir()))) // a plain web server
	t.Cleanup(static.Close)
	portal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte("<!DOCTYPE html><html><body>Log in to the hotel Wi-Fi</body></html>"))
	}))
	t.Cleanup(portal.Close)

	for _, tt := range []struct {
		name, url string
		want      []string
	}{
		{"plain web server", static.URL, []string{
			"avatarIDUnrecognized: manifest: GET " + static.URL + "/v1/avatars/aria/manifest answered 404 Not Found without an origin's error body",
			"origin.url (" + static.URL + ") may be a plain web server or have a wrong path prefix (such as .../v1), or the avatar is not published there",
			"(check origin.url (" + static.URL + ") in ",
			"[reason plainNotFound, HTTP 404]",
		}},
		{"wrong path prefix", originURL + "/v1", []string{
			"GET " + originURL + "/v1/v1/avatars/aria/manifest answered 404 Not Found with code \"notFound\", not avatarIDUnrecognized",
			"origin.url (" + originURL + "/v1)",
			"it must be the root of the published tree",
		}},
		{"captive portal", portal.URL, []string{
			"failedToFetchAvatarMetadata: manifest: GET " + portal.URL + "/v1/avatars/aria/manifest answered an HTML page (200 OK text/html; charset=utf-8), not a manifest: a captive portal or a login page may be in the way",
			"(log in to the network if a captive portal is in the way, or fix origin.url (" + portal.URL + ") in ",
			"[reason htmlAnswer, HTTP 200]",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := testkit.NewEnv(t, waitLimit)
			e.Write(e.Config, e.ConfigText(testkit.Config{OriginURL: tt.url}))
			p := e.Start()
			defer p.Stop()
			_, errOut, code := e.CLI("preload", "aria")
			if code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			for _, want := range tt.want {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			if strings.Contains(errOut, "Check the avatar ID exists") {
				t.Errorf("blames the avatar ID:\n%s", errOut)
			}
		})
	}
	// The origin's own answer for an avatar it lacks is still avatarIDUnrecognized, about the ID.
	e := testkit.NewEnv(t, waitLimit)
	e.Write(e.Config, e.ConfigText(testkit.Config{OriginURL: originURL}))
	p := e.Start()
	defer p.Stop()
	if _, errOut, _ := e.CLI("preload", "ghost"); !strings.Contains(errOut, `(the origin has no avatar "ghost": check the ID, or publish it) [HTTP 404, server code avatarIDUnrecognized]`) {
		t.Errorf("an unknown avatar on a real origin:\n%s", errOut)
	}
}

// exitOf runs cmd and returns its exit code and combined output.
func exitOf(t *testing.T, cmd *exec.Cmd) (int, string) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	case err != nil:
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return 0, string(out)
}

// TestConfigurationErrorsExit2 (issue 14 item 5): errors whose cause is
// this device's configuration or the command line exit 2, everywhere;
// serve warns at start without origin.url, says how to pick a socket when
// it may not create /run/assetd, and makes --state-dir's parents.
func TestConfigurationErrorsExit2(t *testing.T) {
	t.Parallel()
	e := testkit.NewEnv(t, waitLimit)
	e.Write(e.Config, e.ConfigText(testkit.Config{OriginURL: ""}))
	p := e.Start("--state-dir", e.Dir+"/a/b/c")
	p.WaitLog("no origin is configured: only cached and imported avatars can be served; set origin.url in " + e.Config)
	if _, errOut, code := e.CLI("preload", "aria"); code != 2 {
		t.Errorf("preload without origin.url: exit %d, want 2\n%s", code, errOut)
	}
	if _, errOut, code := e.CLI("get", "a b"); code != 2 {
		t.Errorf("get with an invalid ID: exit %d, want 2\n%s", code, errOut)
	}
	if _, errOut, code := e.CLI("session", "set", "--token-file", e.Dir+"/no-such-token"); code != 2 {
		t.Errorf("session set with an unreadable token file: exit %d, want 2\n%s", code, errOut)
	}
	p.Stop()

	e.Write(e.Config, e.ConfigText(testkit.Config{OriginURL: "http://example.com"}))
	if code, out := exitOf(t, testkit.Command("serve", "--config", e.Config)); code != 2 || !strings.Contains(out, "origin.url") {
		t.Errorf("serve with an origin URL the config refuses: exit %d, want 2\n%s", code, out)
	}
}

// TestServeAsAUserWithoutRun: a user other than root without a
// configuration cannot create /run/assetd; serve exits 2 and says how to
// pick a socket.
func TestServeAsAUserWithoutRun(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run assetd as another user")
	}
	if _, err := os.Stat("/run/assetd"); err == nil {
		t.Skip("/run/assetd exists here")
	}
	t.Parallel()
	dir := testkit.ShortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A hard link, not a copy: a copy's write descriptor, inherited by a
	// parallel test's fork until its exec, makes this exec fail with
	// ETXTBSY ("text file busy").
	exe := dir + "/assetd"
	if err := os.Link(bin, exe); err != nil {
		t.Skipf("cannot link the binary into a directory uid 4242 may read: %v", err)
	}
	cmd := exec.Command(exe, "serve", "--state-dir", dir+"/state")
	cmd.Env = testkit.CleanEnv("HOME=" + dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242}}
	code, out := exitOf(t, cmd)
	if code != 2 || !strings.Contains(out, "/run/assetd") || !strings.Contains(out, "--socket PATH or ASSETD_SOCKET") {
		t.Errorf("serve as uid 4242: exit %d, want 2 and how to pick a socket\n%s", code, out)
	}
}

// TestJSONErrors (issue 14 item 7): with --json every command prints its
// error as the API's error shape {"error":{...}} on stdout, nothing but
// JSON there and nothing on stderr, with the exit code it has without
// --json.
func TestJSONErrors(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, newAvatar(t, "rohan", 4<<10))
	e := newEnv(t, o)
	p := e.Start()
	for _, tt := range []struct {
		args []string
		exit int
		code string
	}{
		{[]string{"get", "nobody"}, 1, "avatarAssetMissing"},
		{[]string{"size", "nobody"}, 1, "avatarAssetMissing"},
		{[]string{"pin", "nobody"}, 1, "avatarAssetMissing"},
		{[]string{"verify", "nobody"}, 1, "avatarAssetMissing"},
		{[]string{"rm", "nobody"}, 1, "avatarAssetMissing"},
		{[]string{"get"}, 2, "badRequest"},
		{[]string{"ls", "extra"}, 2, "badRequest"},
		{[]string{"get", "rohan", "--nope"}, 2, "badRequest"},
		{[]string{"nosuchcommand"}, 2, "badRequest"},
	} {
		checkJSONError(t, e, tt.args, tt.exit, tt.code)
	}
	p.Stop()
	checkJSONError(t, e, []string{"stats"}, 3, "daemonNotRunning")
	checkJSONError(t, e, []string{"preload", "rohan"}, 3, "daemonNotRunning")
}

func checkJSONError(t *testing.T, e *env, args []string, exit int, code string) {
	t.Helper()
	_, textErr, textExit := e.CLI(args...)
	out, errOut, got := e.CLI(append(args, "--json")...)
	if got != exit || textExit != exit {
		t.Errorf("%v: exit %d with --json and %d without, want %d\n%s", args, got, textExit, exit, textErr)
	}
	if errOut != "" {
		t.Errorf("%v --json: stderr %q, want nothing", args, errOut)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	var errors []apitype.Error
	for dec.More() {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Errorf("%v --json: stdout is not JSON (%v):\n%s", args, err, out)
			return
		}
		var v struct {
			Error *apitype.Error `json:"error"`
		}
		if json.Unmarshal(raw, &v) == nil && v.Error != nil {
			errors = append(errors, *v.Error)
		}
	}
	if len(errors) != 1 || string(errors[0].Code) != code || errors[0].Message == "" {
		t.Errorf("%v --json: errors %+v, want one %s:\n%s", args, errors, code, out)
	}
}

// TestOddIDs (issue 14 item 8): 'a b', 'rohan/' and "" get one local
// check, one message and exit 2, before any request: not even the valid
// IDs beside them are loaded.
func TestOddIDs(t *testing.T) {
	t.Parallel()
	o := newOrigin(t, newAvatar(t, "rohan", 4<<10))
	e := newEnv(t, o)
	p := e.Start()
	defer p.Stop()
	for _, args := range [][]string{
		{"get", "a b"}, {"get", "rohan/"}, {"get", ""},
		{"preload", "rohan", "a b"}, {"rm", "rohan/"}, {"pin", ""}, {"verify", "rohan", "a b"},
		{"size", "rohan/"}, {"cancel", "a b"},
	} {
		bad := args[len(args)-1]
		_, errOut, code := e.CLI(args...)
		want := `avatarIDUnrecognized: invalid avatar ID "` + bad + `": an avatar ID is 1 to 128 characters of A-Z a-z 0-9 . _ - and does not start with a dot`
		if code != 2 || !strings.HasPrefix(errOut, want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: exit %d, want 2 and one line starting %q:\n%s", args, code, want, errOut)
		}
	}
	if n := o.Requests(); n != 0 {
		t.Errorf("%d requests reached the origin", n)
	}
	if l := p.LogLine("path=/v1/avatars/"); l != "" {
		t.Errorf("a request reached the daemon: %s", l)
	}
}

// TestQuotaAndDiskMessages (issue 14 item 6): an avatar that does not fit
// is told in human sizes with the setting that limits it, for a load and
// an import, under the quota and above the disk's reserve.
func TestQuotaAndDiskMessages(t *testing.T) {
	t.Parallel()
	big := newAvatar(t, "big", 200<<10)
	o := newOrigin(t, big)
	e := newEnv(t, o)
	dir := filepath.Join(e.Dir, "import")
	writeRandom(t, filepath.Join(dir, "model.bin"), 200<<10)

	e.Write(e.Config, e.ConfigText(testkit.Config{OriginURL: o.URL(), Reserve: "100TiB"}))
	p := e.Start()
	_, errOut, _ := e.CLI("preload", "big")
	for _, want := range []string{
		"store: 200.0 KiB more needed, but the disk has 0 B free above the 100.0 TiB reserve (store.reserve_bytes)",
		"(free space on the disk of " + e.State + ", or lower store.reserve_bytes (now 100.0 TiB))",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("preload above the reserve: stderr lacks %q:\n%s", want, errOut)
		}
	}
	_, errOut, _ = e.CLI("import", "mine", dir)
	if want := "the disk has 0 B free above the 100.0 TiB reserve (store.reserve_bytes)"; !strings.Contains(errOut, want) {
		t.Errorf("import above the reserve: stderr lacks %q:\n%s", want, errOut)
	}
	p.Stop()

	e.Write(e.Config, e.ConfigText(testkit.Config{OriginURL: o.URL(), MaxBytes: "64KiB"}))
	p = e.Start()
	defer p.Stop()
	_, errOut, _ = e.CLI("import", "mine", dir)
	for _, want := range []string{
		"more than the whole 64.0 KiB quota (store.max_bytes)",
		"(raise store.max_bytes (now 64.0 KiB; this import needs ",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("import over the quota: stderr lacks %q:\n%s", want, errOut)
		}
	}
	out, _, _ := e.CLI("stats")
	if !strings.Contains(out, "of 64.0 KiB (0% of store.max_bytes)") || !strings.Contains(out, "kept free: store.reserve_bytes") {
		t.Errorf("stats names no setting:\n%s", out)
	}
}
