package testkit

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// LogBuf collects a process's output; safe for concurrent use.
type LogBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *LogBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// Tail is the end of a long log, for failure messages.
func Tail(s string) string {
	const keep = 64 << 10
	if len(s) > keep {
		return "...\n" + s[len(s)-keep:]
	}
	return s
}

// CleanEnv is the environment without the variables that steer assetd,
// plus extra ("K=V"; the last value of a variable wins).
func CleanEnv(extra ...string) []string {
	env := append(os.Environ(), "ASSETD_SOCKET=", "ASSETD_CONFIG=", "ASSETD_STATE_DIR=",
		"NOTIFY_SOCKET=", "WATCHDOG_USEC=", "WATCHDOG_PID=", "LISTEN_FDS=", "LISTEN_PID=", "CREDENTIALS_DIRECTORY=",
		// No system bus: the machine's NetworkManager (a developer's laptop
		// on a metered link) must not hold a test daemon's refreshes.
		"DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/assetd-test-system-bus")
	return append(env, extra...)
}

// Proc is a running assetd process.
type Proc struct {
	T      testing.TB
	Cmd    *exec.Cmd
	Stderr *LogBuf       // stdout and stderr
	Done   chan struct{} // closed once the process has exited
	Err    error         // the Wait error, once Done is closed
	Limit  time.Duration // bounds every wait
}

// StartProc starts cmd in CleanEnv(extraEnv...). The test's cleanup kills
// it if it still runs and logs its output if the test failed.
func StartProc(t testing.TB, limit time.Duration, cmd *exec.Cmd, extraEnv ...string) *Proc {
	t.Helper()
	p := &Proc{T: t, Cmd: cmd, Stderr: &LogBuf{}, Done: make(chan struct{}), Limit: limit}
	cmd.Env = CleanEnv(extraEnv...)
	cmd.Stderr, cmd.Stdout = p.Stderr, p.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.Err = cmd.Wait()
		close(p.Done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.Done:
		default:
			cmd.Process.Kill()
			<-p.Done
		}
		if t.Failed() {
			t.Logf("assetd output:\n%s", Tail(p.Stderr.String()))
		}
	})
	return p
}

func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Wait waits for the process to exit and returns its exit code.
func (p *Proc) Wait() int {
	p.T.Helper()
	select {
	case <-p.Done:
	case <-time.After(p.Limit):
		p.Cmd.Process.Kill()
		<-p.Done
		p.T.Fatalf("assetd did not exit within %v; log:\n%s", p.Limit, Tail(p.Stderr.String()))
	}
	var ee *exec.ExitError
	if errors.As(p.Err, &ee) {
		return ee.ExitCode()
	}
	if p.Err != nil {
		p.T.Fatalf("wait: %v", p.Err)
	}
	return 0
}

func (p *Proc) Signal(s os.Signal) {
	p.T.Helper()
	if err := p.Cmd.Process.Signal(s); err != nil {
		p.T.Fatalf("signal %v: %v", s, err)
	}
}

// Stop sends SIGTERM and requires exit code 0.
func (p *Proc) Stop() {
	p.T.Helper()
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(); code != 0 {
		p.T.Fatalf("exit code after SIGTERM = %d, want 0; log:\n%s", code, Tail(p.Stderr.String()))
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	p.T.Helper()
	p.Cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.Done:
	case <-time.After(p.Limit):
		p.T.Fatal("assetd survived SIGKILL")
	}
}

// LogLine returns the first line of the log that contains s, "" if none.
func (p *Proc) LogLine(s string) string {
	for _, l := range strings.Split(p.Stderr.String(), "\n") {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// WaitLog waits until the log contains s.
func (p *Proc) WaitLog(s string) {
	p.T.Helper()
	deadline := time.Now().Add(p.Limit)
	for !strings.Contains(p.Stderr.String(), s) {
		if time.Now().After(deadline) {
			p.T.Fatalf("no %q in the log within %v:\n%s", s, p.Limit, Tail(p.Stderr.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
