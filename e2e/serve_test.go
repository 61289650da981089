package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/client"
	"github.com/assetd/assetd/internal/testkit"
)

// TestRoutes drives every route of the socket API once, and its error answers.
func TestRoutes(t *testing.T) {
	t.Parallel()
	rohan := newAvatar(t, "rohan", 300<<10, 64<<10)
	mei := newAvatar(t, "mei", 100<<10, 50<<10)
	aria := newAvatar(t, "aria", 200<<10)
	o := newOrigin(t, rohan, mei, aria)
	e := newEnv(t, o)
	p := e.Start()
	c := e.Client()

	var h apitype.Health
	e.must(c, "GET", "/v1/health", nil, 200, &h)
	if h.Version == "" {
		t.Error("health without a version")
	}
	e.mustErr(c, "GET", "/v1/avatars/rohan", nil, 404, "avatarAssetMissing")

	checkFiles(t, rohan, e.mustLoad(c, "rohan"))
	var av apitype.Avatar
	e.must(c, "GET", "/v1/avatars/rohan", nil, 200, &av)
	if av.State != apitype.StateReady || av.SizeBytes != rohan.Size() {
		t.Errorf("retrieve: state %q size %d, want ready %d", av.State, av.SizeBytes, rohan.Size())
	}
	checkFiles(t, rohan, &av)
	e.must(c, "POST", "/v1/avatars/rohan/load?wait=false", nil, 200, &av)
	if av.AvatarID != "rohan" {
		t.Errorf("wait=false on a cached avatar answered %+v", av)
	}

	// /v1/events sees mei's load.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	subscribed := make(chan struct{})
	sawMei := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { watchEvents(ctx, c, subscribed, sawMei) })
	select {
	case <-subscribed:
	case <-time.After(5 * time.Second): // a stream that sends no headers before its first event
	}
	checkFiles(t, mei, e.mustLoad(c, "mei"))
	select {
	case <-sawMei:
	case <-time.After(waitLimit):
		t.Error("/v1/events did not carry mei's completed event")
	}
	cancel()

	// ?wait=false on an avatar not cached starts a load and answers 202.
	var ld apitype.Load
	e.must(c, "POST", "/v1/avatars/aria/load?wait=false", nil, 202, &ld)
	if ld.AvatarID != "aria" {
		t.Errorf("wait=false answered %+v", ld)
	}
	waitFor(t, "aria cached", func() bool {
		code, _ := e.do(c, "GET", "/v1/avatars/aria", nil, nil)
		return code == 200
	})

	var list apitype.List
	e.must(c, "GET", "/v1/avatars", nil, 200, &list)
	if ids := listIDs(list); !slices.Equal(ids, []string{"aria", "mei", "rohan"}) {
		t.Errorf("list = %v", ids)
	}
	var size apitype.Size
	e.must(c, "GET", "/v1/avatars/rohan/size", nil, 200, &size)
	if size.Bytes != rohan.Size() {
		t.Errorf("size = %d, want %d", size.Bytes, rohan.Size())
	}
	e.mustErr(c, "GET", "/v1/avatars/nobody/size", nil, 404, "avatarAssetMissing")
	var st apitype.Stats
	e.must(c, "GET", "/v1/cache/stats", nil, 200, &st)
	if st.TotalEntries != 3 || st.TotalSize != rohan.Size()+mei.Size()+aria.Size() || st.MaxSize != 1<<30 {
		t.Errorf("stats = %+v", st)
	}
	var vr apitype.VerifyResult
	e.must(c, "POST", "/v1/avatars/rohan/verify", nil, 200, &vr)
	if vr.Checked != len(rohan.Assets) || len(vr.Damaged) != 0 {
		t.Errorf("verify = %+v", vr)
	}
	e.mustOK(c, "PUT", "/v1/session", strings.NewReader(`{"sessionToken":"another-token-1234","appId":"e2e-app"}`))
	e.mustOK(c, "DELETE", "/v1/avatars/rohan/load", nil)
	e.mustOK(c, "DELETE", "/v1/loads", nil)

	// An avatar the origin does not know fails with its code.
	evs, err := e.load(c, "nobody")
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Type != apitype.EventFailed || last.Error == nil || last.Error.Code != "avatarIDUnrecognized" {
		t.Errorf("load of an unknown avatar ended with %+v", last)
	}

	// Pin and unpin.
	e.mustOK(c, "PUT", "/v1/avatars/rohan/pin", nil)
	if e.must(c, "GET", "/v1/avatars/rohan", nil, 200, &av); !av.Pinned {
		t.Error("PUT .../pin did not pin")
	}
	e.mustOK(c, "DELETE", "/v1/avatars/rohan/pin", nil)
	if e.must(c, "GET", "/v1/avatars/rohan", nil, 200, &av); av.Pinned {
		t.Error("DELETE .../pin did not unpin")
	}

	// Import an avatar from files on the device.
	src := filepath.Join(e.Dir, "local")
	if err := os.MkdirAll(filepath.Join(src, "anim"), 0o755); err != nil {
		t.Fatal(err)
	}
	local := &avatar{ID: "local"}
	for _, f := range []struct{ path, text string }{{"model.splat", "splat bytes"}, {"anim/idle.bin", "idle bytes"}} {
		if err := os.WriteFile(filepath.Join(src, f.path), []byte(f.text), 0o644); err != nil {
			t.Fatal(err)
		}
		local.Assets = append(local.Assets, asset{Path: f.path, Data: []byte(f.text), SHA256: testkit.Sum([]byte(f.text))})
	}
	// The client streams the files; the old {"dir": ...} body is refused.
	e.mustErr(c, "POST", "/v1/avatars/local/import", strings.NewReader(`{"dir":"`+src+`"}`), 400, "badRequest")
	cl := client.New(e.Sock)
	imported, err := cl.Import(t.Context(), "local", src, client.ImportOptions{})
	cl.CloseIdleConnections()
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, local, imported)

	var rm apitype.Removed
	e.must(c, "DELETE", "/v1/avatars/mei", nil, 200, &rm)
	e.mustErr(c, "GET", "/v1/avatars/mei", nil, 404, "avatarAssetMissing")
	e.mustErr(c, "POST", "/v1/cache/lru?keep=x", nil, 400, "badRequest")
	e.must(c, "GET", "/v1/avatars", nil, 200, &list)
	e.must(c, "POST", "/v1/cache/lru?keep=1", nil, 200, &rm)
	if len(rm.Removed) != len(list.Avatars)-1 {
		t.Errorf("lru keep=1 of %v removed %v", listIDs(list), rm.Removed)
	}

	resp, err := c.Get("http://assetd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics := readAll(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(metrics, "assetd_loads_total") {
		t.Errorf("metrics: %d\n%s", resp.StatusCode, metrics)
	}

	e.must(c, "DELETE", "/v1/avatars", nil, 200, &rm)
	e.must(c, "GET", "/v1/avatars", nil, 200, &list)
	if len(list.Avatars) != 0 {
		t.Errorf("after DELETE /v1/avatars the list holds %v", listIDs(list))
	}
	p.Stop()
}

func watchEvents(ctx context.Context, c *http.Client, subscribed, sawMei chan struct{}) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://assetd/v1/events", nil)
	sc := &http.Client{Transport: c.Transport} // no timeout: ctx ends the stream
	resp, err := sc.Do(req)
	close(subscribed)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	lines.Buffer(make([]byte, 64<<10), 4<<20)
	for lines.Scan() {
		var ev apitype.Event
		if json.Unmarshal(lines.Bytes(), &ev) == nil && ev.AvatarID == "mei" && ev.Type == apitype.EventCompleted {
			close(sawMei)
			return
		}
	}
}

func listIDs(l apitype.List) []string {
	var ids []string
	for _, a := range l.Avatars {
		ids = append(ids, a.AvatarID)
	}
	slices.Sort(ids)
	return ids
}

// mustOK requires a 2xx answer.
func (e *env) mustOK(c *http.Client, method, path string, body *strings.Reader) {
	e.t.Helper()
	var raw json.RawMessage
	var code int
	var err error
	if body == nil {
		code, err = e.do(c, method, path, nil, &raw)
	} else {
		code, err = e.do(c, method, path, body, &raw)
	}
	if err != nil || code/100 != 2 {
		e.t.Fatalf("%s %s: %d %v %s", method, path, code, err, raw)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", waitLimit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return b.String()
}

// TestConcurrentLoads: 64 callers of one avatar share one load. The origin
// holds the first blob half-sent until every caller has its first event, so
// all 64 are waiting on the load in flight.
func TestConcurrentLoads(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "crowd", 1<<20, 512<<10, 256<<10)
	o := newOrigin(t, a)
	h := o.HoldBlob(a.Assets[0].SHA256, 512<<10)
	e := newEnv(t, o)
	p := e.Start()
	c := e.Client()

	const n = 64
	got := make([]*apitype.Avatar, n)
	errc := make(chan error, n)
	joined := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			var once sync.Once
			join := func() { once.Do(func() { joined <- struct{}{} }) }
			defer join() // a caller that failed early must not stall the others
			evs, err := e.loadWatch(c, a.ID, func(apitype.Event) { join() })
			if err != nil {
				errc <- err
				return
			}
			last := evs[len(evs)-1]
			if last.Type != apitype.EventCompleted || last.Avatar == nil {
				errc <- errors.New("a caller's load ended with " + last.Type)
				return
			}
			got[i] = last.Avatar
		})
	}
	timeout := time.After(waitLimit)
	for range n {
		select {
		case <-joined:
		case <-timeout:
			h.Free()
			t.Fatalf("not every caller got an event within %v", waitLimit)
		}
	}
	h.Free()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for i := range got {
		if got[i].Version != got[0].Version || !slices.Equal(got[i].Assets, got[0].Assets) {
			t.Fatalf("caller %d got %+v, caller 0 got %+v", i, got[i], got[0])
		}
	}
	checkFiles(t, a, got[0])
	for _, x := range a.Assets {
		if n := o.BlobGets(x.SHA256); n != 1 {
			t.Errorf("blob %s downloaded %d times, want once", x.Path, n)
		}
	}
	p.Stop()
}

// TestSecondDaemon: a live socket is refused with exit 2, a stale one is
// replaced; SIGTERM removes the socket; the socket is 0660.
func TestSecondDaemon(t *testing.T) {
	t.Parallel()
	o := newOrigin(t)
	e := newEnv(t, o)

	// A stale socket file, as a killed daemon leaves it.
	if err := os.MkdirAll(filepath.Dir(e.Sock), 0o755); err != nil {
		t.Fatal(err)
	}
	stale, err := net.Listen("unix", e.Sock)
	if err != nil {
		t.Fatal(err)
	}
	stale.(*net.UnixListener).SetUnlinkOnClose(false)
	stale.Close()

	first := e.Start()
	fi, err := os.Stat(e.Sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want a socket with 0660", fi.Mode())
	}

	second := e.Spawn()
	if code := second.Wait(); code != 2 {
		t.Errorf("second daemon exit code = %d, want 2", code)
	}
	if want := "another assetd is already serving " + e.Sock; !strings.Contains(second.Stderr.String(), want) {
		t.Errorf("second daemon said %q, want %q", second.Stderr.String(), want)
	}

	// The same store under another socket: refused by the store's lock.
	third := e.Spawn("--socket", filepath.Join(e.Dir, "b.sock"))
	if code := third.Wait(); code == 0 || !strings.Contains(third.Stderr.String(), "in use") {
		t.Errorf("a second daemon on the same store: exit %d, stderr:\n%s", code, third.Stderr.String())
	}
	t.Logf("a second daemon on the same store says: %s", third.Stderr.String())
	var h apitype.Health
	e.must(e.Client(), "GET", "/v1/health", nil, 200, &h)

	first.Stop()
	if _, err := os.Lstat(e.Sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after SIGTERM: %v, want it removed", err)
	}
}

// TestConfigErrorExits2: a bad config names file, line and key; exit 2.
func TestConfigErrorExits2(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newOrigin(t))
	e.Write(e.Config, "[fetch]\nconcurrency = 4\nno_such_key = 1\n")
	p := e.Spawn()
	if code := p.Wait(); code != 2 {
		t.Errorf("exit code %d, want 2", code)
	}
	if out := p.Stderr.String(); !strings.Contains(out, e.Config+":3") || !strings.Contains(out, "no_such_key") {
		t.Errorf("stderr %q does not name file:line and key", out)
	}
	if _, err := os.Lstat(e.Sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a daemon that did not start left a socket: %v", err)
	}
}

// TestSocketActivation: an inherited socket is served and not removed.
func TestSocketActivation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newOrigin(t))
	if err := os.MkdirAll(filepath.Dir(e.Sock), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: e.Sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	f, err := ln.File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	defer f.Close()
	// Point the config elsewhere: the inherited socket wins.
	cmd := execShell(`LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" serve --config "$1" --socket "$2"`, bin, e.Config, filepath.Join(e.Dir, "unused.sock"))
	cmd.ExtraFiles = []*os.File{f}
	p := e.Run(cmd)
	e.WaitHealthy(p)
	p.Stop()
	if _, err := os.Lstat(e.Sock); err != nil {
		t.Errorf("the inherited socket was removed: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(e.Dir, "unused.sock")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a socket was created besides the inherited one: %v", err)
	}
}

// TestKillResume: SIGKILL in the middle of a download, then a restart: the
// load resumes from the partial file and completes with verified files.
func TestKillResume(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "resume", 2<<20, 10<<10)
	o := newOrigin(t, a)
	big := a.Assets[0]
	h := o.HoldBlob(big.SHA256, 1<<20)
	e := newEnv(t, o)
	p := e.Start()
	c := e.Client()

	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		e.load(c, a.ID) // ends with the daemon
	}()
	select {
	case <-h.Sent:
	case <-time.After(waitLimit):
		t.Fatal("the origin never sent the first half")
	}
	partial := filepath.Join(e.State, "ingest", big.SHA256)
	waitFor(t, "a partial file on disk", func() bool {
		fi, err := os.Stat(partial)
		return err == nil && fi.Size() > 0
	})
	p.Signal(syscall.SIGKILL)
	p.Wait()
	<-loadDone
	h.Free()

	p = e.Start() // over the killed daemon's stale socket
	checkFiles(t, a, e.mustLoad(c, a.ID))
	starts := o.BlobStarts(big.SHA256)
	if len(starts) < 2 || starts[0] != 0 || starts[len(starts)-1] == 0 {
		t.Errorf("blob request offsets %v: want a first request from 0 and a resumed one", starts)
	}
	p.Stop()
}

// TestReload: SIGHUP with a broken config keeps the old one; with a valid
// new one (another origin) applies it.
func TestReload(t *testing.T) {
	t.Parallel()
	rohan := newAvatar(t, "rohan", 64<<10)
	aria := newAvatar(t, "aria", 64<<10)
	o1 := newOrigin(t, rohan)
	o2 := newOrigin(t, aria)
	e := newEnv(t, o1)
	p := e.Start()
	c := e.Client()

	good, err := os.ReadFile(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	e.Write(e.Config, string(good)+"\n[fetch]\nconcurrency = \"lots\"\n")
	p.Signal(syscall.SIGHUP)
	p.WaitLog("reload failed")
	if l := p.LogLine("reload failed"); !strings.Contains(l, e.Config+":") {
		t.Errorf("the reload error does not name the file and line: %s", l)
	}
	checkFiles(t, rohan, e.mustLoad(c, "rohan"))

	// A valid config: another origin, and log level info.
	e.origin = o2
	e.level = "info"
	e.writeConfig("")
	p.Signal(syscall.SIGHUP)
	p.WaitLog("configuration reloaded")
	mark := len(p.Stderr.String())
	checkFiles(t, aria, e.mustLoad(c, "aria"))
	p.Stop()
	if after := p.Stderr.String()[mark:]; strings.Contains(after, "level=DEBUG") {
		t.Errorf("debug lines after the reload to level info:\n%s", after)
	}
}

// TestTokenSecrecy: the session token from a token file reaches the origin
// and nothing else: not the log, not /metrics, not the command line.
func TestTokenSecrecy(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 64<<10)
	b := newAvatar(t, "mei", 64<<10)
	o := newOrigin(t, a, b)
	secret := "e2e-secret-" + a.Assets[0].SHA256[:24]
	o.SetToken(secret)
	e := newEnv(t, o)
	e.Write(e.Token, secret+"\n")
	p := e.Start()
	c := e.Client()
	checkFiles(t, a, e.mustLoad(c, "rohan"))
	if !slices.Contains(o.Auths(), "Bearer "+secret) {
		t.Fatal("the origin never saw the token")
	}

	// A token set through the API is a secret too.
	secret2 := "e2e-second-" + b.Assets[0].SHA256[:24]
	o.SetToken(secret2)
	evs, err := e.load(c, "mei")
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; last.Error == nil || last.Error.Code != "sessionTokenExpired" {
		t.Fatalf("load with a stale token ended with %+v", last)
	}
	e.mustOK(c, "PUT", "/v1/session", strings.NewReader(`{"sessionToken":"`+secret2+`"}`))
	checkFiles(t, b, e.mustLoad(c, "mei"))

	resp, err := c.Get("http://assetd/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics := readAll(t, resp)
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(p.Cmd.Process.Pid) + "/cmdline")
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	for _, s := range []string{secret, secret2} {
		if strings.Contains(p.Stderr.String(), s) {
			t.Errorf("the log shows a token:\n%s", p.Stderr.String())
		}
		if strings.Contains(metrics, s) {
			t.Errorf("/metrics shows a token")
		}
		if strings.Contains(string(cmdline), s) {
			t.Errorf("the command line shows a token")
		}
	}
}

// TestReloadCommand: assetd reload exits 0 when the new configuration is in
// force, 2 with the file's errors when the daemon refuses it (the old one
// stays), and 3 when no daemon answers. SIGHUP keeps working beside it.
func TestReloadCommand(t *testing.T) {
	t.Parallel()
	rohan := newAvatar(t, "rohan", 64<<10)
	aria := newAvatar(t, "aria", 64<<10)
	o1 := newOrigin(t, rohan)
	o2 := newOrigin(t, aria)
	e := newEnv(t, o1)
	p := e.Start()
	c := e.Client()

	if out, errOut, code := e.CLI("reload"); code != 0 || !strings.Contains(out, "configuration reloaded") {
		t.Fatalf("reload of the unchanged file: exit %d\n%s%s", code, out, errOut)
	}
	good, err := os.ReadFile(e.Config)
	if err != nil {
		t.Fatal(err)
	}
	e.Write(e.Config, string(good)+"\n[bogus]\nkey = 1\n")
	out, errOut, code := e.CLI("reload")
	if code != 2 || !strings.Contains(errOut, e.Config+":") || !strings.Contains(errOut, "bogus") {
		t.Errorf("reload of a bad file: exit %d, want 2 naming the file and key\n%s%s", code, out, errOut)
	}
	checkFiles(t, rohan, e.mustLoad(c, "rohan"))

	// A good file (another origin) is in force when reload returns.
	e.origin = o2
	e.writeConfig("")
	if out, errOut, code := e.CLI("reload"); code != 0 {
		t.Fatalf("reload of a good file: exit %d\n%s%s", code, out, errOut)
	}
	checkFiles(t, aria, e.mustLoad(c, "aria"))
	p.Signal(syscall.SIGHUP)
	p.WaitLog(`trigger=SIGHUP`)
	p.Stop()

	if out, errOut, code := e.CLI("reload"); code != 3 {
		t.Errorf("reload with no daemon: exit %d, want 3\n%s%s", code, out, errOut)
	}
}
