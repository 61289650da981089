package apitest

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/assetd/assetd/internal/api"
)

// Server is an api.Server answering on a Unix socket until the test ends.
type Server struct {
	Sock string // the socket's path
	stop func()
}

// Serve runs api.New(m, opts).Serve on a new socket "api.sock" in dir,
// or, when dir is "", in a new temporary directory with a short path (a
// socket's path is at most 107 bytes, which t.TempDir's can exceed),
// removed when the test ends. The server stops when the test ends or at
// Stop, whichever comes first.
func Serve(t testing.TB, dir string, m api.Manager, opts api.Options) *Server {
	t.Helper()
	if dir == "" {
		d, err := os.MkdirTemp("", "apitest")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	sock := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := api.New(m, opts)
	go func() { done <- srv.Serve(ctx, ln) }()
	var once sync.Once
	s := &Server{Sock: sock}
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("api: Serve: %v", err)
			}
		})
	}
	t.Cleanup(s.stop)
	return s
}

// Stop ends Serve and waits for it: the socket is closed and every
// request has returned. It may be called more than once.
func (s *Server) Stop() { s.stop() }
