package e2e

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/client"
)

// TestClientPackage: the Go client against the real daemon, typed errors
// included, and DaemonNotRunning once it is gone.
func TestClientPackage(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 128<<10, 8<<10)
	o := newOrigin(t, a)
	e := newEnv(t, o)
	p := e.Start()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	c := client.New(e.Sock)
	defer c.CloseIdleConnections()

	if h, err := c.Health(ctx); err != nil || h.Status != "ok" {
		t.Fatalf("Health = %+v, %v", h, err)
	}
	var progress int
	av, err := c.Load(ctx, "rohan", client.LoadOptions{}, func(ev apitype.Event) {
		if ev.Type == apitype.EventProgress {
			progress++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, a, av)
	if progress == 0 {
		t.Error("no progress event reached the callback")
	}
	if _, err := c.Get(ctx, "nobody"); !errors.Is(err, errcode.AvatarAssetMissing) {
		t.Errorf("Get(nobody) = %v, want avatarAssetMissing", err)
	}
	if _, err := c.Load(ctx, "ghost", client.LoadOptions{}, nil); !errors.Is(err, errcode.AvatarIDUnrecognized) {
		t.Errorf("Load(ghost) = %v, want avatarIDUnrecognized", err)
	}
	if n, err := c.Size(ctx, "rohan"); err != nil || n != a.Size() {
		t.Errorf("Size = %d, %v; want %d", n, err, a.Size())
	}
	p.Stop()
	_, err = c.Health(ctx)
	if !errors.Is(err, errcode.DaemonNotRunning) || !strings.Contains(err.Error(), e.Sock) {
		t.Errorf("Health after stop = %v, want daemonNotRunning naming the socket", err)
	}
}

// TestCLIAgainstDaemon: client commands of the real binary against the real
// daemon, with the documented exit codes; a token given on stdin reaches
// the origin without ever being on a command line.
func TestCLIAgainstDaemon(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 64<<10)
	o := newOrigin(t, a)
	const token = "e2e-stdin-token-5150"
	o.SetToken(token)
	e := newEnv(t, o)
	p := e.Start()

	cli := func(stdin string, args ...string) (int, string) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--socket", e.Sock}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	}
	// The configured token file does not exist: the 401 is a configuration
	// error (exit 2) that names the file, not an account error.
	if code, out := cli("", "preload", "rohan"); code != 2 || !strings.Contains(out, "origin.session_token_file could not be read") ||
		!strings.Contains(out, "reason tokenFileUnreadable") {
		t.Errorf("preload with an unreadable token file: exit %d, want 2 naming the file\n%s", code, out)
	}
	if code, out := cli(token+"\n", "session", "set"); code != 0 {
		t.Fatalf("session set: exit %d\n%s", code, out)
	}
	if code, out := cli("", "preload", "rohan"); code != 0 {
		t.Fatalf("preload: exit %d\n%s", code, out)
	}
	if code, out := cli("", "get", "rohan", "--paths"); code != 0 || strings.Count(out, "\n") != 1 {
		t.Errorf("get --paths: exit %d\n%s", code, out)
	}
	if code, out := cli("", "get", "nobody"); code != 1 || !strings.Contains(out, "avatarAssetMissing") {
		t.Errorf("get nobody: exit %d, want 1 with the code\n%s", code, out)
	}
	p.Stop()
	if code, out := cli("", "stats"); code != 3 {
		t.Errorf("stats with no daemon: exit %d, want 3\n%s", code, out)
	}
	if strings.Contains(p.Stderr.String(), token) {
		t.Errorf("the log shows the token:\n%s", p.Stderr.String())
	}
}
