package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 20 * time.Second

// env is one daemon's world: a short temp dir (Unix socket paths are
// limited to ~107 bytes) with its socket, state dir, config and token file.
type env struct {
	t      *testing.T
	dir    string
	sock   string
	state  string
	config string
	token  string // token file path
	origin *origin

	level   string   // log.level; "debug" unless set
	preload []string // preload.avatars
}

func newEnv(t *testing.T, o *origin) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "ad")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &env{
		t:      t,
		dir:    dir,
		sock:   filepath.Join(dir, "run", "a.sock"),
		state:  filepath.Join(dir, "state"),
		config: filepath.Join(dir, "assetd.toml"),
		token:  filepath.Join(dir, "token"),
		origin: o,
	}
	e.writeConfig("")
	return e
}

// writeConfig writes a valid config for the env's origin, with extra TOML
// appended to the [fetch] section.
func (e *env) writeConfig(extraFetch string) {
	e.t.Helper()
	level := e.level
	if level == "" {
		level = "debug"
	}
	preload, err := json.Marshal(e.preload)
	if err != nil || e.preload == nil {
		preload = []byte("[]")
	}
	cfg := fmt.Sprintf(`# e2e
[origin]
url = %q
app_id = "e2e-app"
session_token_file = %q

[fetch]
retry_wait_min = "10ms"
retry_wait_max = "200ms"
max_retries = 2
%s

[store]
dir = %q
max_bytes = "1GiB"
reserve_bytes = 0

[api]
socket = %q

[preload]
avatars = %s

[log]
level = %q
`, e.origin.srv.URL, e.token, extraFetch, e.state, e.sock, preload, level)
	e.write(e.config, cfg)
}

func (e *env) write(path, text string) {
	e.t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		e.t.Fatal(err)
	}
}

// logBuf collects a daemon's stderr.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// proc is a running `assetd serve`.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *logBuf
	done   chan struct{}
	err    error // the Wait error, once done is closed
}

// start runs `assetd serve --config` on the env and waits for /v1/health.
func (e *env) start(args ...string) *proc {
	e.t.Helper()
	p := e.spawn(args...)
	e.waitHealthy(p)
	return p
}

// spawn runs `assetd serve --config CONFIG args...` without waiting.
func (e *env) spawn(args ...string) *proc {
	e.t.Helper()
	cmd := exec.Command(bin, append([]string{"serve", "--config", e.config}, args...)...)
	return e.run(cmd)
}

// run starts cmd in a clean environment plus extraEnv ("K=V"; the last
// value of a variable wins).
func (e *env) run(cmd *exec.Cmd, extraEnv ...string) *proc {
	e.t.Helper()
	p := &proc{t: e.t, cmd: cmd, stderr: &logBuf{}, done: make(chan struct{})}
	cmd.Env = append(os.Environ(), "ASSETD_SOCKET=", "ASSETD_CONFIG=", "ASSETD_STATE_DIR=",
		"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "LISTEN_FDS=", "LISTEN_PID=", "CREDENTIALS_DIRECTORY=")
	cmd.Env = append(cmd.Env, extraEnv...)
	cmd.Stderr = p.stderr
	cmd.Stdout = p.stderr
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	e.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			cmd.Process.Kill()
			<-p.done
		}
		if e.t.Failed() {
			e.t.Logf("assetd stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(waitLimit):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("assetd did not exit within %v; stderr:\n%s", waitLimit, p.stderr.String())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatalf("wait: %v", p.err)
	}
	return 0
}

func (p *proc) signal(s os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(s); err != nil {
		p.t.Fatalf("signal %v: %v", s, err)
	}
}

// stop sends SIGTERM and requires exit code 0.
func (p *proc) stop() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	if code := p.wait(); code != 0 {
		p.t.Fatalf("exit code after SIGTERM = %d, want 0; stderr:\n%s", code, p.stderr.String())
	}
}

// logLine returns the first line of the log that contains s, "" if none.
func (p *proc) logLine(s string) string {
	for _, l := range strings.Split(p.stderr.String(), "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// waitLog waits until the daemon's log contains s.
func (p *proc) waitLog(s string) {
	p.t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !strings.Contains(p.stderr.String(), s) {
		if time.Now().After(deadline) {
			p.t.Fatalf("no %q in the log within %v:\n%s", s, waitLimit, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *env) waitHealthy(p *proc) {
	e.t.Helper()
	deadline := time.Now().Add(waitLimit)
	c := e.client()
	for {
		select {
		case <-p.done:
			e.t.Fatalf("assetd exited before serving (%v); stderr:\n%s", p.err, p.stderr.String())
		default:
		}
		var h apitype.Health
		if code, _ := e.do(c, "GET", "/v1/health", nil, &h); code == 200 && h.Status == "ok" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no /v1/health within %v; stderr:\n%s", waitLimit, p.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is an HTTP client of the env's socket.
func (e *env) client() *http.Client {
	return &http.Client{
		Timeout: waitLimit,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", e.sock)
			},
			MaxIdleConnsPerHost: 100,
		},
	}
}

// do sends a request to the daemon and decodes a JSON answer into out
// (an *apitype.ErrorResponse is decoded instead for non-2xx answers when out
// is not one). It returns the status; transport errors are returned too.
func (e *env) do(c *http.Client, method, path string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequest(method, "http://assetd"+path, body)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decoding %s %s answer %q: %w", method, path, b, err)
		}
	}
	return resp.StatusCode, nil
}

// must is do that fails the test unless the status is want.
func (e *env) must(c *http.Client, method, path string, body io.Reader, want int, out any) {
	e.t.Helper()
	var raw json.RawMessage
	code, err := e.do(c, method, path, body, &raw)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	if code != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, code, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
}

// mustErr requires an error answer with status and code.
func (e *env) mustErr(c *http.Client, method, path string, body io.Reader, status int, code string) apitype.Error {
	e.t.Helper()
	var er apitype.ErrorResponse
	e.must(c, method, path, body, status, &er)
	if string(er.Error.Code) != code {
		e.t.Fatalf("%s %s: code %q, want %q", method, path, er.Error.Code, code)
	}
	if er.Error.Message == "" {
		e.t.Errorf("%s %s: error without a message", method, path)
	}
	return er.Error
}

// load streams POST /v1/avatars/{id}/load and returns every event.
func (e *env) load(c *http.Client, id string) ([]apitype.Event, error) {
	return e.loadWatch(c, id, nil)
}

// loadWatch is load that also hands each event to onEvent as it arrives.
func (e *env) loadWatch(c *http.Client, id string, onEvent func(apitype.Event)) ([]apitype.Event, error) {
	req, err := http.NewRequest("POST", "http://assetd/v1/avatars/"+id+"/load", nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("load %s: status %d: %s", id, resp.StatusCode, b)
	}
	var evs []apitype.Event
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		var ev apitype.Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return evs, fmt.Errorf("event %q: %w", sc.Bytes(), err)
		}
		evs = append(evs, ev)
		if onEvent != nil {
			onEvent(ev)
		}
	}
	return evs, sc.Err()
}

// mustLoad loads id and requires a completed last event.
func (e *env) mustLoad(c *http.Client, id string) *apitype.Avatar {
	e.t.Helper()
	evs, err := e.load(c, id)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(evs) == 0 {
		e.t.Fatalf("load %s: no events", id)
	}
	last := evs[len(evs)-1]
	if last.Type != apitype.EventCompleted || last.Avatar == nil {
		e.t.Fatalf("load %s: last event %+v (error %+v), want completed", id, last, last.Error)
	}
	return last.Avatar
}

// checkFiles requires every asset of got to be the bytes of want.
func checkFiles(t *testing.T, want *avatar, got *apitype.Avatar) {
	t.Helper()
	if got.AvatarID != want.id || len(got.Assets) != len(want.assets) {
		t.Fatalf("avatar %+v, want %s with %d assets", got, want.id, len(want.assets))
	}
	byPath := map[string]asset{}
	for _, x := range want.assets {
		byPath[x.path] = x
	}
	for _, a := range got.Assets {
		b, err := os.ReadFile(a.LocalPath)
		if err != nil {
			t.Fatalf("asset %s: %v", a.Path, err)
		}
		if w := byPath[a.Path]; !bytes.Equal(b, w.data) || a.SHA256 != w.sum {
			t.Fatalf("asset %s: %d bytes at %s do not match the origin's", a.Path, len(b), a.LocalPath)
		}
	}
}
