package api

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// emfileListener fails every Accept as accept4 does when the process is
// out of descriptors.
type emfileListener struct{ net.Listener }

func (emfileListener) Accept() (net.Conn, error) {
	return nil, &net.OpError{Op: "accept", Net: "unix", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// TestDescriptorExhaustionWarns: running out of descriptors is a warning
// (once per 10 s, however often accept fails), not a debug line.
func TestDescriptorExhaustionWarns(t *testing.T) {
	var logs syncBuf
	s := New(nil, Options{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	ln := &limitListener{Listener: emfileListener{}, s: s, l: s.lim}
	for range 3 {
		if _, err := ln.Accept(); !errors.Is(err, syscall.EMFILE) {
			t.Fatalf("Accept: %v", err)
		}
	}
	out := logs.b.String()
	if n := strings.Count(out, "level=WARN"); n != 1 || !strings.Contains(out, "out of file descriptors") {
		t.Errorf("log after 3 failed accepts:\n%s\nwant one warning", out)
	}
}

// TestConnectionCounts: a caller's place comes back when its connection
// closes; the privileged are counted but never refused.
func TestConnectionCounts(t *testing.T) {
	l := newConnLimits(Options{MaxConnections: 16, MaxConnectionsPerUID: 2})
	for i := range 2 {
		if why := l.admitConn(4242, false); why != "" {
			t.Fatalf("connection %d refused: %s", i+1, why)
		}
	}
	if why := l.admitConn(4242, false); !strings.Contains(why, "max_connections_per_uid") {
		t.Errorf("third connection: %q", why)
	}
	for range 20 {
		if why := l.admitConn(0, true); why != "" {
			t.Fatalf("root refused: %s", why)
		}
	}
	if why := l.admitConn(1000, false); !strings.Contains(why, "api.max_connections)") {
		t.Errorf("past the total: %q", why)
	}
	l.release(4242, &l.conns)
	for range 20 {
		l.release(0, &l.conns)
	}
	if why := l.admitConn(4242, false); why != "" {
		t.Errorf("after a close: %q", why)
	}
	if l.n != 2 || len(l.conns) != 1 {
		t.Errorf("counts: %d open, by uid %v", l.n, l.conns)
	}
}
