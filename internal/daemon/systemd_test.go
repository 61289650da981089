package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/assetd/assetd/internal/alive"
)

// notifySocket listens like systemd's NOTIFY_SOCKET and returns the
// datagrams it receives.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(shortDir(t), "n.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("NOTIFY_SOCKET", path)
	out := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			out <- string(buf[:n])
		}
	}()
	t.Cleanup(func() { c.Close(); <-done })
	return out
}

func next(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(20 * time.Second):
		t.Fatal("no sd_notify message")
		return ""
	}
}

func TestNotifier(t *testing.T) {
	msgs := notifySocket(t)
	n := newNotifier(slog.New(slog.DiscardHandler))
	n.ready("serving on x")
	if m := next(t, msgs); !strings.Contains(m, "READY=1") || !strings.Contains(m, "STATUS=serving on x") {
		t.Errorf("ready sent %q", m)
	}
	done := n.reloading()
	if m := next(t, msgs); !strings.Contains(m, "RELOADING=1") || !strings.Contains(m, "MONOTONIC_USEC=") {
		t.Errorf("reloading sent %q", m)
	}
	done("serving")
	if m := next(t, msgs); !strings.Contains(m, "READY=1") {
		t.Errorf("end of reload sent %q", m)
	}
	n.stopping()
	if m := next(t, msgs); !strings.Contains(m, "STOPPING=1") {
		t.Errorf("stopping sent %q", m)
	}
}

func TestWatchdog(t *testing.T) {
	msgs := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", "")
	n := newNotifier(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	wait := n.watchdog(ctx, n.watchdogInterval(), nil)
	for range 2 {
		if m := next(t, msgs); m != "WATCHDOG=1" {
			t.Errorf("watchdog sent %q", m)
		}
	}
	cancel()
	wait()
}

// With the watchdog off (no WATCHDOG_USEC, or one meant for another
// process) nothing pings: a marker sent after watchdog's goroutine, had it
// started, would have to stop, is the next message after READY.
func TestWatchdogOff(t *testing.T) {
	for _, tc := range []struct{ name, usec, pid string }{
		{"unset", "", ""},
		{"another process", "20000", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msgs := notifySocket(t)
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			n := newNotifier(slog.New(slog.DiscardHandler))
			n.ready("x")
			if m := next(t, msgs); !strings.HasPrefix(m, "READY=1") {
				t.Fatalf("first message %q, want READY=1", m)
			}
			ctx, cancel := context.WithCancel(context.Background())
			wait := n.watchdog(ctx, n.watchdogInterval(), nil)
			cancel()
			wait()
			n.status("marker")
			if m := next(t, msgs); m != "STATUS=marker" {
				t.Errorf("with the watchdog off, got %q before the marker", m)
			}
		})
	}
}

// TestWatchdogWaitsOnLoops: the pings go on while every loop turns; when
// one stops they stop, one warning names it, and they resume (with an info
// line) when it turns again.
func TestWatchdogWaitsOnLoops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		n := newNotifier(slog.New(slog.NewTextHandler(&logs, nil)))
		var mu sync.Mutex
		pings := 0
		n.send = func(state string) (bool, error) {
			if state == "WATCHDOG=1" {
				mu.Lock()
				pings++
				mu.Unlock()
			}
			return true, nil
		}
		count := func() int { mu.Lock(); defer mu.Unlock(); return pings }
		const interval = 8 * time.Second
		mon := alive.New(interval / 4)
		turning, stuck := mon.Loop("preload", interval), mon.Loop("control", interval)
		ctx, cancel := context.WithCancel(context.Background())
		unstick := make(chan struct{})
		var wg sync.WaitGroup
		turn := func(l *alive.Loop) {
			defer l.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-l.C():
					l.Beat()
				}
			}
		}
		wg.Go(func() { turn(turning) })
		wg.Go(func() {
			<-unstick // stuck (a deadlock, a hung read) until here
			turn(stuck)
		})
		wait := n.watchdog(ctx, interval, mon)

		time.Sleep(interval)
		synctest.Wait()
		before := count()
		if before < 2 {
			t.Fatalf("%d pings in one interval while every loop turned", before)
		}
		// "control" never beat: stalled after its allowance.
		time.Sleep(3 * interval)
		synctest.Wait()
		stopped := count()
		time.Sleep(3 * interval)
		synctest.Wait()
		if got := count(); got != stopped {
			t.Errorf("%d pings while a loop was stuck", got-stopped)
		}
		if w := strings.Count(logs.String(), "level=WARN"); w != 1 || !strings.Contains(logs.String(), "loops=[control]") {
			t.Errorf("want one warning naming control, got:\n%s", logs.String())
		}
		close(unstick)
		time.Sleep(interval)
		synctest.Wait()
		if got := count(); got == stopped {
			t.Error("no pings after the loop turned again")
		}
		if !strings.Contains(logs.String(), "turn again") {
			t.Errorf("no line that the loops turn again:\n%s", logs.String())
		}
		cancel()
		wait()
		wg.Wait()
	})
}
