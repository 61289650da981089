package testkit

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
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
)

// Env is one daemon's world: a short temp dir (Unix socket paths are
// limited to ~107 bytes) with its socket, state dir, config and token
// file paths. Writing the config is the caller's.
type Env struct {
	T      testing.TB
	Dir    string
	Sock   string
	State  string
	Config string
	Token  string        // token file path
	Limit  time.Duration // bounds every wait on the daemon

	// ExtraEnv is added to the daemon's environment by Spawn and Start
	// (DBUS_SYSTEM_BUS_ADDRESS=..., TZ=...).
	ExtraEnv []string
}

// NewEnv makes an Env in a new short temp dir, removed after the test.
func NewEnv(t testing.TB, limit time.Duration) *Env {
	t.Helper()
	dir := ShortDir(t)
	return &Env{
		T:      t,
		Dir:    dir,
		Sock:   filepath.Join(dir, "run", "a.sock"),
		State:  filepath.Join(dir, "state"),
		Config: filepath.Join(dir, "assetd.toml"),
		Token:  filepath.Join(dir, "token"),
		Limit:  limit,
	}
}

// ShortDir is a temp dir with a short path, removed after the test.
func ShortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ad")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// Write replaces path's content atomically (a watcher never sees half).
func (e *Env) Write(path, text string) {
	e.T.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		e.T.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		e.T.Fatal(err)
	}
}

// Run starts cmd in CleanEnv(extraEnv...).
func (e *Env) Run(cmd *exec.Cmd, extraEnv ...string) *Proc {
	e.T.Helper()
	return StartProc(e.T, e.Limit, cmd, extraEnv...)
}

// Spawn runs `assetd serve --config CONFIG args...` without waiting.
func (e *Env) Spawn(args ...string) *Proc {
	e.T.Helper()
	return e.Run(exec.Command(bin, append([]string{"serve", "--config", e.Config}, args...)...), e.ExtraEnv...)
}

// Start is Spawn that waits for /v1/health.
func (e *Env) Start(args ...string) *Proc {
	e.T.Helper()
	p := e.Spawn(args...)
	e.WaitHealthy(p)
	return p
}

// WaitHealthy waits until p answers /v1/health with "ok"; it fails the
// test if p exits first.
func (e *Env) WaitHealthy(p *Proc) {
	e.T.Helper()
	deadline := time.Now().Add(e.Limit)
	c := e.Client()
	defer c.CloseIdleConnections()
	for {
		select {
		case <-p.Done:
			e.T.Fatalf("assetd exited before serving (%v); log:\n%s", p.Err, Tail(p.Stderr.String()))
		default:
		}
		var h apitype.Health
		if code, _ := Do(c, "GET", "/v1/health", nil, &h); code == 200 && h.Status == "ok" {
			return
		}
		if time.Now().After(deadline) {
			e.T.Fatalf("no /v1/health within %v; log:\n%s", e.Limit, Tail(p.Stderr.String()))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Client is an HTTP client of the env's socket.
func (e *Env) Client() *http.Client { return SocketClient(e.Sock, e.Limit, 256) }

// SocketClient is an HTTP client of a Unix socket that keeps up to conns
// idle connections.
func SocketClient(sock string, timeout time.Duration, conns int) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			MaxIdleConnsPerHost: conns,
		},
	}
}

// Do sends a request to the daemon and decodes a JSON answer, whatever its
// status, into out. It returns the status; transport errors are returned
// too.
func Do(c *http.Client, method, path string, body io.Reader, out any) (int, error) {
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

// Load streams POST /v1/avatars/{id}/load, hands each event to onEvent
// (when not nil) as it arrives and returns them all.
func Load(ctx context.Context, c *http.Client, id string, onEvent func(apitype.Event)) ([]apitype.Event, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", "http://assetd/v1/avatars/"+id+"/load", nil)
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

// CLI runs an assetd client command against the env's socket and returns
// its stdout, stderr and exit code.
func (e *Env) CLI(args ...string) (stdout, stderr string, code int) {
	e.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), e.Limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"--socket", e.Sock}, args...)...)
	cmd.Env = CleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		e.T.Fatalf("assetd %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}
