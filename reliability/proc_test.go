package reliability

// Helpers that run the real binary, adapted from e2e/proc_test.go.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
)

// waitLimit bounds every wait on the daemon.
const waitLimit = 60 * time.Second

// env is one daemon's world in a short temp dir (Unix socket paths are
// limited to ~107 bytes).
type env struct {
	t      *testing.T
	dir    string
	sock   string
	state  string
	config string
	token  string // token file path
	url    string // origin URL

	preload []string
	origin  string // TOML appended to [origin]
	fetch   string // TOML appended to [fetch]
	api     string // TOML appended to [api]
}

func newEnv(t *testing.T, url string) *env {
	t.Helper()
	dir, err := os.MkdirTemp("", "ar")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &env{
		t:      t,
		dir:    dir,
		sock:   filepath.Join(dir, "run", "a.sock"),
		state:  filepath.Join(dir, "state"),
		config: filepath.Join(dir, "assetd.toml"),
		token:  filepath.Join(dir, "token"),
		url:    url,
	}
}

func (e *env) writeConfig() {
	e.t.Helper()
	preload, _ := json.Marshal(e.preload)
	if e.preload == nil {
		preload = []byte("[]")
	}
	cfg := fmt.Sprintf(`[origin]
url = %q
app_id = "reliability"
session_token_file = %q
%s

[fetch]
retry_wait_min = "10ms"
retry_wait_max = "200ms"
max_retries = 3
%s

[store]
dir = %q
max_bytes = "1GiB"
reserve_bytes = 0

[api]
socket = %q
%s

[preload]
avatars = %s

[log]
level = "debug"
`, e.url, e.token, e.origin, e.fetch, e.state, e.sock, e.api, preload)
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

// logBuf collects a process's output.
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

// proc is a running assetd process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *logBuf
	done   chan struct{}
	err    error
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// cleanEnv is the environment without the variables that steer assetd.
func cleanEnv(extra ...string) []string {
	env := append(os.Environ(), "ASSETD_SOCKET=", "ASSETD_CONFIG=", "ASSETD_STATE_DIR=",
		"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "LISTEN_FDS=", "LISTEN_PID=", "CREDENTIALS_DIRECTORY=")
	return append(env, extra...)
}

// spawn runs `assetd serve --config CONFIG` without waiting.
func (e *env) spawn() *proc {
	e.t.Helper()
	cmd := exec.Command(bin, "serve", "--config", e.config)
	cmd.Env = cleanEnv()
	p := &proc{t: e.t, cmd: cmd, stderr: &logBuf{}, done: make(chan struct{})}
	cmd.Stderr, cmd.Stdout = p.stderr, p.stderr
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
	})
	return p
}

func (e *env) start() *proc {
	e.t.Helper()
	p := e.spawn()
	e.waitHealthy(p)
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(waitLimit):
		p.t.Fatal("assetd survived SIGKILL")
	}
}

// stop sends SIGTERM and requires exit code 0.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(waitLimit):
		p.cmd.Process.Kill()
		<-p.done
		p.t.Fatalf("assetd did not exit on SIGTERM; log:\n%s", tail(p.stderr.String()))
	}
	if p.err != nil {
		p.t.Fatalf("exit after SIGTERM: %v; log:\n%s", p.err, tail(p.stderr.String()))
	}
}

func tail(s string) string {
	if len(s) > 8<<10 {
		return "...\n" + s[len(s)-8<<10:]
	}
	return s
}

func (e *env) waitHealthy(p *proc) {
	e.t.Helper()
	deadline := time.Now().Add(waitLimit)
	c := e.client()
	defer c.CloseIdleConnections()
	for {
		select {
		case <-p.done:
			e.t.Fatalf("assetd exited before serving (%v); log:\n%s", p.err, tail(p.stderr.String()))
		default:
		}
		var h apitype.Health
		if code, _ := e.do(c, "GET", "/v1/health", nil, &h); code == 200 && h.Status == "ok" {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no /v1/health within %v; log:\n%s", waitLimit, tail(p.stderr.String()))
		}
		time.Sleep(10 * time.Millisecond)
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
			MaxIdleConnsPerHost: 256,
		},
	}
}

// do sends a request and decodes the JSON answer into out.
func (e *env) do(c *http.Client, method, path string, body io.Reader, out any) (int, error) {
	req, err := http.NewRequest(method, "http://assetd"+path, body)
	if err != nil {
		return 0, err
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

// load streams POST /v1/avatars/{id}/load and returns the last event.
func (e *env) load(ctx context.Context, c *http.Client, id string) (apitype.Event, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", "http://assetd/v1/avatars/"+id+"/load", nil)
	if err != nil {
		return apitype.Event{}, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return apitype.Event{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return apitype.Event{}, fmt.Errorf("load %s: status %d: %s", id, resp.StatusCode, b)
	}
	var last apitype.Event
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	n := 0
	for sc.Scan() {
		if err := json.Unmarshal(sc.Bytes(), &last); err != nil {
			return last, fmt.Errorf("event %q: %w", sc.Bytes(), err)
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return last, err
	}
	if n == 0 {
		return last, errors.New("no events")
	}
	return last, nil
}

// cli runs an assetd client command against the env's socket and returns
// its stdout, stderr and exit code.
func (e *env) cli(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--socket", e.sock}, args...)...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("assetd %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// procStatus reads fields of /proc/PID/status in KiB (VmRSS, VmHWM).
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && k == field {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return -1
}

// fdCount is the number of open descriptors of a process.
func fdCount(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return -1
	}
	return len(ents)
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// mkShortDir is a temp dir with a short path, removed after the test.
func mkShortDir(t *testing.T) (string, error) {
	dir, err := os.MkdirTemp("", "ar")
	if err == nil {
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return dir, err
}

// unixFds is the number of a process's descriptors that are Unix sockets
// (the API's listener and its client connections), found by matching the
// fd links' inodes against /proc/net/unix.
func unixFds(pid int) int {
	table, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return -1
	}
	inodes := map[string]bool{}
	for _, l := range strings.Split(string(table), "\n")[1:] {
		if f := strings.Fields(l); len(f) >= 7 {
			inodes[f[6]] = true
		}
	}
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") && inodes[strings.Trim(link[len("socket:"):], "[]")] {
			n++
		}
	}
	return n
}
