package httpserve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// A request in flight when ctx ends finishes within the grace; Serve then
// returns nil and nothing was forced.
func TestServeShutsDownGracefully(t *testing.T) {
	ln := listen(t)
	entered, release := make(chan struct{}), make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	})}
	ctx, cancel := context.WithCancel(context.Background())
	forced := make(chan error, 1)
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, srv, time.Minute, func() error { return srv.Serve(ln) }, func(err error) { forced <- err })
	}()

	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-entered
	cancel()
	close(release)
	if s := <-got; s != "done" {
		t.Fatalf("the request in flight got %q, want done", s)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	select {
	case err := <-forced:
		t.Fatalf("forced(%v) on a graceful shutdown", err)
	default:
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Error("the listener still accepts after Serve returned")
	}
}

// A request that outlives the grace is closed: forced hears Shutdown's
// error, and Serve still returns nil.
func TestServeForcesPastTheGrace(t *testing.T) {
	ln := listen(t)
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})}
	ctx, cancel := context.WithCancel(context.Background())
	forced := make(chan error, 1)
	served := make(chan error, 1)
	go func() {
		served <- Serve(ctx, srv, 10*time.Millisecond, func() error { return srv.Serve(ln) }, func(err error) { forced <- err })
	}()
	clientDone := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err == nil {
			resp.Body.Close()
		}
		clientDone <- err
	}()
	<-entered
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	if err := <-forced; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("forced(%v), want the grace's deadline", err)
	}
	if err := <-clientDone; err == nil {
		t.Error("the request past the grace got an answer; want its connection closed")
	}
}

// A serve that fails before ctx ends is returned as it is.
func TestServeReturnsAnEarlyFailure(t *testing.T) {
	ln := listen(t)
	ln.Close()
	srv := &http.Server{Handler: http.NotFoundHandler()}
	err := Serve(context.Background(), srv, time.Second, func() error { return srv.Serve(ln) }, nil)
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve on a closed listener = %v, want its error", err)
	}
}
