package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/api/apitest"
	"github.com/assetd/assetd/internal/errs"
)

func TestGet(t *testing.T) {
	f := startDaemon(t)
	av := testAvatar("rohan", 7654604)
	av.Pinned = true
	av.LastUsed = time.Now().Add(-3 * time.Hour)
	f.Put(av)

	out, _, code := cli(t, t.Context(), "", "get", "rohan", "--paths", "--socket", f.sock)
	want := av.Assets[0].LocalPath + "\n" + av.Assets[1].LocalPath + "\n"
	if code != 0 || out != want {
		t.Errorf("--paths: exit %d, stdout %q, want %q", code, out, want)
	}

	out, _, code = cli(t, t.Context(), "", "get", "rohan", "--socket", f.sock)
	for _, s := range []string{"rohan  version 2026-11-01.3  ready  7.3 MiB, 2 files", "pinned yes, last used 3h ago", "model.splat", av.Assets[0].LocalPath} {
		if code != 0 || !strings.Contains(out, s) {
			t.Errorf("summary lacks %q: exit %d\n%s", s, code, out)
		}
	}

	out, _, code = cli(t, t.Context(), "", "get", "rohan", "--json", "--socket", f.sock)
	var got apitype.Avatar
	if err := json.Unmarshal([]byte(out), &got); err != nil || code != 0 {
		t.Fatalf("--json: exit %d, %v\n%s", code, err, out)
	}
	if diff := cmp.Diff(av, got); diff != "" {
		t.Errorf("--json (-want +got):\n%s", diff)
	}

	_, errOut, code := cli(t, t.Context(), "", "get", "nobody", "--socket", f.sock)
	if code != 1 || errOut != "nobody: avatarAssetMissing: avatar nobody is not cached (run: assetd preload nobody) [reason notCached]\n" {
		t.Errorf("not cached: exit %d, stderr %q", code, errOut)
	}
}

func TestLs(t *testing.T) {
	f := startDaemon(t)
	now := time.Now()
	rohan := testAvatar("rohan", 7654604)
	rohan.LastUsed, rohan.Pinned = now.Add(-5*time.Minute), true
	maya := testAvatar("maya", 2*mib)
	maya.State = apitype.StateStale
	f.Put(rohan, maya)
	f.SetLoads(
		apitype.Load{AvatarID: "new", State: apitype.StateDownloading, Progress: 0.42, BytesDone: 42, BytesTotal: 100},
		apitype.Load{AvatarID: "maya", State: apitype.StateDownloading, BytesDone: 1, BytesTotal: 4},
	)
	out, _, code := cli(t, t.Context(), "", "ls", "--socket", f.sock)
	want := `ID     VERSION       STATE                SIZE     LAST USED  PINNED
maya   2026-11-01.3  stale, updating 25%  2.0 MiB  never      no
rohan  2026-11-01.3  ready                7.3 MiB  5m ago     yes
new    -             downloading 42%      100 B    -          -
`
	if code != 0 || out != want {
		t.Errorf("exit %d, table:\n%s\nwant:\n%s", code, out, want)
	}

	out, _, _ = cli(t, t.Context(), "", "ls", "--json", "--socket", f.sock)
	var l apitype.List
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Avatars) != 2 || len(l.Loads) != 2 {
		t.Errorf("--json: %v\n%s", err, out)
	}

	f.ClearAll()
	f.SetLoads()
	if out, _, _ = cli(t, t.Context(), "", "ls", "--socket", f.sock); out != "no avatars cached, no loads in flight\n" {
		t.Errorf("empty: %q", out)
	}
}

func TestRmGcCancel(t *testing.T) {
	f := startDaemon(t)
	// Before each command: rohan and maya used a minute ago, old1 and old2
	// a week ago, and a load of slow in flight.
	reset := func() {
		f.ClearAll()
		recent, old := time.Now().Add(-time.Minute), time.Now().Add(-7*24*time.Hour)
		for id, used := range map[string]time.Time{"rohan": recent, "maya": recent, "old1": old, "old2": old} {
			a := testAvatar(id, mib)
			a.LastUsed = used
			f.Put(a)
		}
		f.SetLoads(apitype.Load{AvatarID: "slow", State: apitype.StateDownloading})
		f.Calls()
	}

	tests := []struct {
		args   []string
		code   int
		stdout string
		calls  []string // the manager's, behind the real API
	}{
		{[]string{"rm", "rohan", "maya"}, 0, "removed 2 avatars: rohan, maya\n", []string{"Clear rohan", "Clear maya"}},
		{[]string{"rm", "--all"}, 0, "removed 4 avatars: maya, old1, old2, rohan\n", []string{"ClearAll"}},
		{[]string{"rm", "rohan", "ghost"}, 1, "removed 1 avatar: rohan\n", []string{"Clear rohan", "Clear ghost"}},
		{[]string{"rm"}, 2, "", nil},
		{[]string{"rm", "rohan", "--all"}, 2, "", nil},
		{[]string{"gc", "--keep", "2"}, 0, "removed 2 avatars: old1, old2\n", []string{"ClearLRU 2"}},
		{[]string{"gc"}, 2, "", nil},
		{[]string{"gc", "--keep", "-1"}, 2, "", nil},
		{[]string{"gc", "--keep", "x"}, 2, "", nil},
		{[]string{"cancel", "slow", "rohan"}, 0, "cancelled slow\n", []string{"CancelLoading slow", "CancelLoading rohan"}},
		{[]string{"cancel", "--all"}, 0, "cancelled slow\n", []string{"CancelAll"}},
		{[]string{"cancel"}, 2, "", nil},
		{[]string{"pin", "rohan"}, 0, "pinned rohan\n", []string{"SetPinned rohan true"}},
		{[]string{"unpin", "rohan", "ghost"}, 1, "unpinned rohan\n", []string{"SetPinned rohan false", "SetPinned ghost false"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			reset()
			out, errOut, code := cli(t, t.Context(), "", append(tt.args, "--socket", f.sock)...)
			if code != tt.code || out != tt.stdout {
				t.Errorf("exit %d, stdout %q; want %d, %q; stderr %q", code, out, tt.code, tt.stdout, errOut)
			}
			if got := f.Calls(); !slices.Equal(got, tt.calls) {
				t.Errorf("calls %q, want %q", got, tt.calls)
			}
			if code == 2 && !strings.Contains(errOut, "assetd: ") {
				t.Errorf("usage error without a message: %q", errOut)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	f := startDaemon(t)
	f.Put(testAvatar("rohan", mib), testAvatar("maya", mib))
	f.SetVerify(apitype.VerifyResult{AvatarID: "maya", State: apitype.StateDamaged, Checked: 2, Damaged: []string{"model.splat"}, Healing: true})

	out, _, code := cli(t, t.Context(), "", "verify", "rohan", "--socket", f.sock)
	if code != 0 || out != "rohan: ok, 2 files checked\n" {
		t.Errorf("verify rohan: exit %d, %q", code, out)
	}
	out, _, code = cli(t, t.Context(), "", "verify", "--socket", f.sock)
	want := "maya: damaged, 1 of 2 files damaged: model.splat (re-fetching)\nrohan: ok, 2 files checked\n"
	if code != 1 || out != want {
		t.Errorf("verify all: exit %d, %q, want 1, %q", code, out, want)
	}
	out, _, code = cli(t, t.Context(), "", "verify", "--json", "rohan", "--socket", f.sock)
	var res []apitype.VerifyResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || len(res) != 1 || res[0].Checked != 2 {
		t.Errorf("--json: exit %d, %v, %s", code, err, out)
	}
}

func TestSessionSet(t *testing.T) {
	f := startDaemon(t)
	const token = "tok-3f9a" // a test token, not a secret
	out, errOut, code := cli(t, t.Context(), token+"\n", "session", "set", "--socket", f.sock)
	if code != 0 || out != "session token set\n" || strings.Contains(out+errOut, token) {
		t.Errorf("from stdin: exit %d, stdout %q, stderr %q", code, out, errOut)
	}

	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("tok-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := cli(t, t.Context(), "", "session", "set", "--token-file", file, "--app-id", "app1", "--socket", f.sock); code != 0 {
		t.Errorf("--token-file: exit %d, %q", code, errOut)
	}
	got := f.Sessions()
	want := []apitype.Session{{SessionToken: token}, {SessionToken: "tok-file", AppID: "app1"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sessions (-want +got):\n%s", diff)
	}

	for name, tc := range map[string]struct {
		stdin string
		args  []string
	}{
		"token in argv": {"", []string{"session", "set", "tok-argv"}},
		"empty stdin":   {"  \n", []string{"session", "set"}},
		"two lines":     {"a\nb\n", []string{"session", "set"}},
		"missing file":  {"", []string{"session", "set", "--token-file", file + ".none"}},
	} {
		_, errOut, code := cli(t, t.Context(), tc.stdin, append(tc.args, "--socket", f.sock)...)
		if code != 2 || strings.Contains(errOut, "tok-argv") {
			t.Errorf("%s: exit %d, stderr %q", name, code, errOut)
		}
	}
	if n := f.connections(); n != 2 {
		t.Errorf("bad tokens reached the daemon: %d connections for 2 good tokens", n)
	}
	if calls := f.Calls(); !slices.Equal(calls, []string{"RetryAuthFailed", "RetryAuthFailed"}) {
		t.Errorf("manager calls %q, want a retry of the loads that failed on the token per new token", calls)
	}
}

func TestStatsSizeImportVersion(t *testing.T) {
	f := startDaemon(t)
	f.Put(testAvatar("rohan", 7654604))
	stats := apitype.Stats{TotalEntries: 3, TotalSize: 7654604, MaxSize: 4 << 30, Pinned: 1, Blobs: 5,
		LoadsInFlight: 1, FreeBytes: 12 << 30, ReserveBytes: 256 << 20}
	f.SetStats(stats)

	out, _, code := cli(t, t.Context(), "", "stats", "--socket", f.sock)
	want := `avatars    3 (1 pinned, 0 stale, 0 damaged)
size       7.3 MiB of 4.0 GiB (0% of store.max_bytes) in 5 files
unused     none
partial    none
loading    1
free disk  12.0 GiB (256.0 MiB kept free: store.reserve_bytes)
refreshes  not held
`
	if code != 0 || out != want {
		t.Errorf("stats: exit %d\n%s\nwant:\n%s", code, out, want)
	}
	opens := time.Date(2026, 6, 2, 2, 0, 0, 0, time.Local)
	stats.Background = apitype.Background{Held: true, OutsideWindow: true, WindowOpens: opens, MeteredLink: true}
	f.SetStats(stats)
	out, _, _ = cli(t, t.Context(), "", "stats", "--socket", f.sock)
	if want := "refreshes  held: outside the refresh window until 02:00 (preload.refresh_window); metered link (fetch.background_on_metered)\n"; !strings.HasSuffix(out, want) {
		t.Errorf("stats, held:\n%s\nwant a last line:\n%s", out, want)
	}
	stats.Background = apitype.Background{Held: true, MeteredLink: true}
	f.SetStats(stats)
	out, _, _ = cli(t, t.Context(), "", "stats", "--json", "--socket", f.sock)
	var st apitype.Stats
	if err := json.Unmarshal([]byte(out), &st); err != nil || st != stats {
		t.Errorf("stats --json: %v %s", err, out)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"size", "rohan"}, "7.3 MiB\n"},
		{[]string{"size"}, "7.3 MiB\n"},
		{[]string{"size", "--bytes", "rohan"}, "7654604\n"},
		{[]string{"size", "--json"}, "{\n  \"bytes\": 7654604\n}\n"},
	} {
		if out, errOut, code := cli(t, t.Context(), "", append(tc.args, "--socket", f.sock)...); code != 0 || out != tc.want {
			t.Errorf("%q: exit %d, %q (stderr %q), want %q", tc.args, code, out, errOut, tc.want)
		}
	}
	if _, _, code := cli(t, t.Context(), "", "size", "a", "b", "--socket", f.sock); code != 2 {
		t.Errorf("size a b: exit %d, want 2", code)
	}

	dir := t.TempDir()
	pubWriteTree(t, dir, map[string]string{"a": "A", "sub/b": "BB"})
	out, _, code = cli(t, t.Context(), "", "import", "rohan", dir, "--version", "v7", "--socket", f.sock)
	if code != 0 || out != "imported rohan, version v7, 2 files, 3 B\n" {
		t.Errorf("import: exit %d, %q", code, out)
	}
	// The command streams the files it read; a relative DIR works the same.
	wantImports := []apitest.Import{{AvatarID: "rohan", Version: "v7", Files: []string{"a=A", "sub/b=BB"}}}
	rel, err := filepath.Rel(mustGetwd(t), dir)
	if err == nil {
		cli(t, t.Context(), "", "import", "rohan", rel, "--socket", f.sock)
		wantImports = append(wantImports, apitest.Import{AvatarID: "rohan", Files: []string{"a=A", "sub/b=BB"}})
	}
	if diff := cmp.Diff(wantImports, f.Imports()); diff != "" {
		t.Errorf("the daemon got (-want +got):\n%s", diff)
	}
	// Over an avatar cached from the origin: exit 2 naming --force, which
	// the daemon then gets.
	f.Put(apitype.Avatar{AvatarID: "fromorigin", Source: "origin", State: apitype.StateReady})
	if _, errOut, code := cli(t, t.Context(), "", "import", "fromorigin", dir, "--socket", f.sock); code != 2 || !strings.Contains(errOut, "--force") {
		t.Errorf("import over an origin avatar: exit %d, %q; want 2 naming --force", code, errOut)
	}
	if _, errOut, code := cli(t, t.Context(), "", "import", "fromorigin", dir, "--force", "--socket", f.sock); code != 0 {
		t.Errorf("import --force: exit %d, %q", code, errOut)
	}
	if imps := f.Imports(); !imps[len(imps)-1].Force {
		t.Errorf("import --force: the daemon got %+v, without force", imps[len(imps)-1])
	}
	// A file this user cannot read fails here, before anything is sent.
	if os.Geteuid() != 0 {
		os.WriteFile(filepath.Join(dir, "private"), []byte("p"), 0o200)
		_, errOut, code := cli(t, t.Context(), "", "import", "rohan", dir, "--socket", f.sock)
		if code != 2 || !strings.Contains(errOut, "cannot read "+filepath.Join(dir, "private")) {
			t.Errorf("import of an unreadable file: exit %d, %q", code, errOut)
		}
	}

	out, _, code = cli(t, t.Context(), "", "version", "--json")
	var bi buildInfo
	if err := json.Unmarshal([]byte(out), &bi); err != nil || code != 0 || bi.Version == "" || bi.Go == "" {
		t.Errorf("version --json: exit %d, %v, %s", code, err, out)
	}
	if out, _, _ = cli(t, t.Context(), "", "version"); !strings.HasPrefix(out, "assetd ") {
		t.Errorf("version: %q", out)
	}
}

func mustGetwd(t *testing.T) string {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return wd
}

func TestEvents(t *testing.T) {
	noLeaks(t)
	f := startDaemon(t)
	evs := append(progressEvents("rohan", 10_000_000, 0, 5, 30), apitype.Event{
		Type: apitype.EventState, AvatarID: "maya", State: apitype.StateDamaged,
		// As the manager's: the error names the avatar, which the hint the
		// server adds quotes.
		Error: &apitype.Error{Code: errcode.AvatarAssetMissing, AvatarID: "maya", Message: "a file is gone", Reason: errcode.ReasonDamaged},
	})
	f.SetEvents(evs...)
	out, _, code := cli(t, t.Context(), "", "events", "--socket", f.sock)
	want := `rohan: downloading 0% (0 B of 9.5 MiB)
rohan: downloading 30% (2.9 MiB of 9.5 MiB)
rohan: completed, version 2026-11-01.3, 9.5 MiB
maya: damaged (maya: avatarAssetMissing: a file is gone (run: assetd preload maya to fetch the damaged files again) [reason damaged])
`
	if code != 0 || out != want {
		t.Errorf("exit %d:\n%s\nwant:\n%s", code, out, want)
	}
	out, _, _ = cli(t, t.Context(), "", "events", "--json", "--socket", f.sock)
	if n := strings.Count(out, "\n"); n != len(evs) {
		t.Errorf("--json: %d lines for %d events", n, len(evs))
	}
}

// TestNotRunning: no daemon is one line that says so, and exit 3.
func TestNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{
		{"ls"}, {"get", "rohan"}, {"stats"}, {"size"}, {"rm", "a", "b"}, {"gc", "--keep", "1"},
		{"verify"}, {"cancel", "--all"}, {"events"}, {"pin", "a", "b"}, {"preload", "a"},
	} {
		out, errOut, code := cli(t, t.Context(), "tok\n", append(args, "--socket", sock)...)
		if code != errs.ExitUnreachable || out != "" || errOut != "assetd is not running at "+sock+"\n" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	t.Setenv("ASSETD_SOCKET", sock)
	if _, errOut, code := cli(t, t.Context(), "tok\n", "session", "set"); code != 3 || errOut != "assetd is not running at "+sock+"\n" {
		t.Errorf("ASSETD_SOCKET: exit %d, stderr %q", code, errOut)
	}
}

// TestRunExitCodes goes through main's run itself.
func TestRunExitCodes(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"ls", "--socket", sock}, 3},
		{[]string{"get", "--socket", sock}, 2},
		{[]string{"ls", "extra", "--socket", sock}, 2},
		{[]string{"nosuchcommand"}, 2},
	} {
		if got := run(tc.args); got != tc.code {
			t.Errorf("run(%q) = %d, want %d", tc.args, got, tc.code)
		}
	}
}

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		e    *errcode.Error
		want string
	}{
		{&errcode.Error{Code: errcode.AvatarIDUnrecognized, AvatarID: "rohan"},
			`rohan: avatarIDUnrecognized: Avatar ID not found. (the origin has no avatar "rohan": check the ID, or publish it)`},
		{&errcode.Error{Code: errcode.BadRequest, Message: "keep=N is required"},
			"badRequest: keep=N is required (Fix the request; see docs/api.md.)"},
		{&errcode.Error{Code: errcode.DaemonNotRunning, Message: "assetd is not running at /x"}, "assetd is not running at /x"},
		{&errcode.Error{Code: errcode.ServerError, AvatarID: "a", Message: "boom", ServerCode: "E42", HTTPStatus: 500},
			"a: serverError: boom (retry later; the origin's message says what failed) [HTTP 500, server code E42]"},
	} {
		if got := describe(tc.e); got != tc.want {
			t.Errorf("describe(%+v)\n got %q\nwant %q", tc.e, got, tc.want)
		}
	}
	if humanBytes(1023) != "1023 B" || humanBytes(7654604) != "7.3 MiB" || humanBytes(4<<30) != "4.0 GiB" {
		t.Error("humanBytes")
	}
}

// TestOddIDsNeverReachTheDaemon: the ID check comes before any request,
// for every command that takes IDs, with or without --json.
func TestOddIDsNeverReachTheDaemon(t *testing.T) {
	f := startDaemon(t)
	for _, args := range [][]string{
		{"get", "a b"}, {"preload", "rohan", "rohan/"}, {"rm", ""}, {"pin", "a b"}, {"unpin", "a b"},
		{"verify", "x", "a b"}, {"size", ""}, {"cancel", "rohan/"}, {"import", "a b", t.TempDir()},
		{"get", "--json", "a b"},
	} {
		out, errOut, code := cli(t, t.Context(), "", append(args, "--socket", f.sock)...)
		if code != 2 || !strings.Contains(out+errOut, "invalid avatar ID") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if n := f.connections(); n != 0 {
		t.Errorf("the daemon was asked: %d connections", n)
	}
}

// docs/fleet.md and docs/operations.md quote the lines assetd stats prints
// when refreshes are held.
func TestDocsQuoteTheHeldLines(t *testing.T) {
	squash := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	opens := time.Date(2026, 6, 2, 2, 0, 0, 0, time.Local)
	window := squash("refreshes  " + heldText(apitype.Background{Held: true, OutsideWindow: true, WindowOpens: opens}))
	metered := strings.TrimPrefix(heldText(apitype.Background{Held: true, MeteredLink: true}), "held: ")
	for _, doc := range []string{"../../docs/fleet.md", "../../docs/operations.md"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		text := squash(string(b))
		for _, line := range []string{window[:strings.Index(window, " (")], metered} {
			if !strings.Contains(text, line) {
				t.Errorf("%s does not quote assetd stats' %q", doc, line)
			}
		}
	}
}
