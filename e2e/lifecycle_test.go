package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
)

// TestTermMidLoad: SIGTERM while a download hangs exits 0 promptly, keeps
// the partial file, and the next start resumes it.
func TestTermMidLoad(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "resume", 1<<20)
	o := newOrigin(t, a)
	big := a.Assets[0]
	h := o.HoldBlob(big.SHA256, 512<<10)
	e := newEnv(t, o)
	p := e.Start()
	c := e.Client()

	type result struct {
		evs []apitype.Event
		err error
	}
	loaded := make(chan result, 1)
	go func() {
		evs, err := e.load(c, a.ID)
		loaded <- result{evs, err}
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
	p.Stop()
	r := <-loaded
	if r.err == nil && len(r.evs) > 0 {
		if last := r.evs[len(r.evs)-1]; last.Type == apitype.EventCompleted {
			t.Errorf("a load interrupted by SIGTERM completed: %+v", last)
		}
	}
	if fi, err := os.Stat(partial); err != nil || fi.Size() == 0 {
		t.Fatalf("the partial file did not survive SIGTERM: %v", err)
	}
	if _, err := os.Lstat(e.Sock); err == nil {
		t.Error("the socket survived SIGTERM")
	}
	h.Free()
	p = e.Start()
	checkFiles(t, a, e.mustLoad(c, a.ID))
	if starts := o.BlobStarts(big.SHA256); len(starts) < 2 || starts[len(starts)-1] == 0 {
		t.Errorf("blob request offsets %v: the download did not resume", starts)
	}
	p.Stop()
}

// TestSystemdNotify: READY=1 once serving, WATCHDOG=1 pings, RELOADING=1
// around SIGHUP and STOPPING=1 on SIGTERM.
func TestSystemdNotify(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newOrigin(t))
	path := filepath.Join(e.Dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				close(msgs)
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	expect := func(want string) {
		t.Helper()
		timeout := time.After(waitLimit)
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					t.Fatalf("notify socket closed before %q", want)
				}
				if strings.Contains(m, want) {
					return
				}
			case <-timeout:
				t.Fatalf("no %q from sd_notify within %v", want, waitLimit)
			}
		}
	}
	p := e.Run(exec.Command(bin, "serve", "--config", e.Config), "NOTIFY_SOCKET="+path, "WATCHDOG_USEC=400000")
	expect("READY=1")
	e.WaitHealthy(p)
	expect("WATCHDOG=1")
	expect("WATCHDOG=1")
	p.Signal(syscall.SIGHUP)
	expect("RELOADING=1")
	expect("READY=1")
	p.Stop()
	expect("STOPPING=1")
}

// TestOverrides: --socket and --state-dir beat the file, and the
// environment (ASSETD_CONFIG, ASSETD_SOCKET) applies without flags.
func TestOverrides(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newOrigin(t))
	sock := filepath.Join(e.Dir, "flag.sock")
	state := filepath.Join(e.Dir, "flagstate")
	p := e.Run(exec.Command(bin, "serve", "--config", e.Config, "--socket", sock, "--state-dir", state))
	e2 := *e.Env
	e2.Sock = sock
	e2.WaitHealthy(p)
	if _, err := os.Stat(filepath.Join(state, "index.db")); err != nil {
		t.Errorf("--state-dir: %v", err)
	}
	if _, err := os.Lstat(e.Sock); err == nil {
		t.Error("the config's socket was created despite --socket")
	}
	p.Stop()

	out, err := exec.Command(bin, "serve", "--config", e.Config, "--socket", sock, "--state-dir", state, "--print-config").CombinedOutput()
	if err != nil || !strings.Contains(string(out), sock) || !strings.Contains(string(out), state) {
		t.Errorf("--print-config: %v\n%s", err, out)
	}

	envSock := filepath.Join(e.Dir, "env.sock")
	p = e.Run(exec.Command(bin, "serve"), "ASSETD_CONFIG="+e.Config, "ASSETD_SOCKET="+envSock)
	e2.Sock = envSock
	e2.WaitHealthy(p)
	p.Stop()
}

// TestWatchdogLoopsTurn: under a watchdog every long-lived loop of the real
// daemon beats (the API and manager self-checks, the duties, the watchers,
// the flush): the pings go on well past one watchdog interval, which is
// each loop's allowance. A loop left unwired would stop them after it.
func TestWatchdogLoopsTurn(t *testing.T) {
	t.Parallel()
	e := newEnv(t, newOrigin(t))
	path := filepath.Join(e.Dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pings := make(chan struct{}, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			if string(buf[:n]) == "WATCHDOG=1" {
				pings <- struct{}{}
			}
		}
	}()
	const interval = 2 * time.Second // pings every second
	p := e.Run(exec.Command(bin, "serve", "--config", e.Config), "NOTIFY_SOCKET="+path,
		fmt.Sprintf("WATCHDOG_USEC=%d", interval.Microseconds()))
	e.WaitHealthy(p)
	start := time.Now()
	for n := 0; time.Since(start) < 3*interval; n++ {
		select {
		case <-pings:
		case <-time.After(waitLimit):
			t.Fatalf("the pings stopped after %d (%v): %s", n, time.Since(start).Round(time.Millisecond), p.LogLine("stopped turning"))
		}
	}
	p.Stop()
}
