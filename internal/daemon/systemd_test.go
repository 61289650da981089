package daemon

import (
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	wait := n.watchdog(ctx)
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
			wait := n.watchdog(ctx)
			cancel()
			wait()
			n.status("marker")
			if m := next(t, msgs); m != "STATUS=marker" {
				t.Errorf("with the watchdog off, got %q before the marker", m)
			}
		})
	}
}
