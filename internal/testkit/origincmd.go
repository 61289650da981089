package testkit

import (
	"bufio"
	"io"
	"os/exec"
	"strconv"
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
	u, _ := StartOriginCmdLog(t, root, limit, args...)
	return u
}

// StartOriginCmdLog is StartOriginCmd that also returns the origin's log
// (its stderr; with --log-level debug a line per request, see
// OriginRequests).
func StartOriginCmdLog(t testing.TB, root string, limit time.Duration, args ...string) (string, *LogBuf) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"origin", "--root", root, "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = CleanEnv()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logs := new(LogBuf)
	cmd.Stderr = logs
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
		return u, logs
	case <-time.After(limit):
		t.Fatalf("assetd origin printed no address; stderr:\n%s", logs.String())
		return "", nil
	}
}

// Command is an exec.Cmd of the assetd binary under test, with a clean
// environment.
func Command(args ...string) *exec.Cmd {
	cmd := exec.Command(bin, args...)
	cmd.Env = CleanEnv()
	return cmd
}

// OriginRequest is one request `assetd origin --log-level debug` logged.
type OriginRequest struct {
	Method, Path string
	Status       int
	Bytes        int64
}

// OriginRequests parses the request lines of `assetd origin --log-level
// debug`'s log (text format).
func OriginRequests(log string) []OriginRequest {
	var out []OriginRequest
	for _, l := range strings.Split(log, "\n") {
		if !strings.Contains(l, " msg=request ") {
			continue
		}
		var r OriginRequest
		for _, f := range strings.Fields(l) {
			k, v, _ := strings.Cut(f, "=")
			switch k {
			case "method":
				r.Method = v
			case "path":
				r.Path = v
			case "status":
				r.Status, _ = strconv.Atoi(v)
			case "bytes":
				r.Bytes, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		out = append(out, r)
	}
	return out
}
