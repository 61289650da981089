package testkit

import (
	"bufio"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// StartOriginCmd runs `assetd origin --root ROOT` on a free loopback port
// until the test ends and returns its base URL (what it prints after
// "listening on ").
func StartOriginCmd(t testing.TB, root string, limit time.Duration, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"origin", "--root", root, "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = CleanEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs LogBuf
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				select {
				case lines <- u:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-done
		cmd.Wait()
	})
	select {
	case u := <-lines:
		return u
	case <-time.After(limit):
		t.Fatalf("assetd origin printed no address; stderr:\n%s", logs.String())
		return ""
	}
}

// Command is an exec.Cmd of the assetd binary under test, with a clean
// environment.
func Command(args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = CleanEnv()
	return cmd
}
