package api_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
)

// TestPeerCredentials runs a client as uid 4242 (a re-exec of this test
// binary; not the overflow uid 65534, which the config refuses) against servers that refuse or admit it.
func TestPeerCredentials(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("skipped: running a client under another uid needs root")
	}
	// uid 4242 must reach the binary and the socket: a world-readable dir.
	dir, err := os.MkdirTemp("", "assetd-api-peer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "api.test")
	copyFile(t, bin)
	tests := []struct {
		name   string
		opts   api.Options
		groups []uint32
		req    string // "" = GET /v1/health
		want   string
	}{
		{"refused", api.Options{AllowedUIDs: []int{1234}, AllowedGIDs: []int{4321}}, nil, "", "403 forbidden"},
		{"allowed uid", api.Options{AllowedUIDs: []int{4242}}, nil, "", "200 "},
		{"allowed gid", api.Options{AllowedGIDs: []int{4242}}, nil, "", "200 "},
		{"allowed supplementary group", api.Options{AllowedGIDs: []int{4343}}, []uint32{4343}, "", "200 "},
		{"other supplementary group", api.Options{AllowedGIDs: []int{4343}}, []uint32{4444}, "", "403 forbidden"},
		// The daemon's own group admits, as a supplementary group (usermod
		// -aG assetd USER) and as the primary group.
		{"the daemon's group, supplementary", api.Options{}, []uint32{uint32(os.Getgid())}, "", "200 "},
		{"no group of the daemon's", api.Options{}, []uint32{4444}, "", "403 forbidden"},
		// Only root and the daemon's own uid may reload, not allowed callers.
		{"reload by an allowed uid", api.Options{AllowedUIDs: []int{4242}, Reload: func(context.Context) error { return nil }}, nil, "POST /v1/reload", "403 forbidden"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := filepath.Join(dir, string(rune('a'+i)))
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			ts := startIn(t, sub, &apitest.Manager{}, tt.opts)
			if err := os.Chmod(ts.sock, 0o666); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "-test.run=^$")
			cmd.Dir = dir
			cmd.Env = []string{childEnv + "=" + ts.sock, childReqEnv + "=" + tt.req}
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 4242, Gid: 4242, Groups: tt.groups}}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(string(out)); !strings.HasPrefix(got+" ", tt.want) {
				t.Errorf("child got %q, want %q", got, tt.want)
			}
			// The server serves its own user all along.
			if _, err := ts.c.Health(testCtx(t)); err != nil {
				t.Errorf("root refused: %v", err)
			}
		})
	}
}

func copyFile(t *testing.T, dst string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestReload: POST /v1/reload answers 204 when the configuration is in
// force and 400 badRequest (reason configRefused, the file's errors as the
// message) when it is refused; root (this test) may ask.
func TestReload(t *testing.T) {
	var refuse error
	calls := 0
	ts := start(t, &apitest.Manager{}, api.Options{Reload: func(context.Context) error { calls++; return refuse }})
	if err := ts.c.Reload(testCtx(t)); err != nil {
		t.Fatalf("reload: %v", err)
	}
	refuse = errors.New("/etc/assetd/assetd.toml:3: key fetch.concurrency: must be between 1 and 64, not 0")
	e := wantCode(t, ts.c.Reload(testCtx(t)), errcode.BadRequest)
	if e.Reason != errcode.ReasonConfigRefused || !strings.Contains(e.Message, refuse.Error()) {
		t.Errorf("refused reload: reason %q message %q, want configRefused and the file's error", e.Reason, e.Message)
	}
	if calls != 2 {
		t.Errorf("Reload called %d times, want 2", calls)
	}
	status, _, _ := ts.raw(t, http.MethodGet, "/v1/reload", nil, nil)
	if status != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/reload: %d, want 405", status)
	}
	noReload := start(t, &apitest.Manager{}, api.Options{})
	wantCode(t, noReload.c.Reload(testCtx(t)), errcode.Internal)
}
