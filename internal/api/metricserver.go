package api

import (
	"context"
	"github.com/assetd/assetd/internal/httpserve"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// metricsReadHeaderTimeout bounds a scrape's request headers; a variable
// for the test of a client that never finishes them.
var metricsReadHeaderTimeout = 5 * time.Second

// Limits of the metrics listener: a scrape is one small GET, so every
// timeout is short and the headers small.
const (
	metricsReadTimeout     = 10 * time.Second
	metricsWriteTimeout    = 10 * time.Second
	metricsIdleTimeout     = time.Minute
	metricsMaxHeaderBytes  = 8 << 10
	metricsShutdownTimeout = 2 * time.Second
)

// MaxMetricsConnections bounds the connections metrics.listen holds open
// at once: a scraper needs one, and a flood from the network (it has no
// authentication) must not take the descriptors the socket API and the
// store need. Connections past it are closed at once.
const MaxMetricsConnections = 8

// MetricsHandler answers GET and HEAD of /metrics with the figures the
// socket's GET /metrics answers, and nothing else: any other path is 404,
// any other method 405. It carries no caller check: metrics.listen is
// unauthenticated and exposes only these counts (docs/operations.md).
func (s *Server) MetricsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		if r.URL.Path != "/metrics" {
			http.Error(w, "404 page not found: only /metrics is served here", http.StatusNotFound)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "405 method not allowed: GET or HEAD", http.StatusMethodNotAllowed)
			return
		}
		s.writeMetrics(w, r)
	})
}

// ServeMetrics answers MetricsHandler on ln (metrics.listen), which it owns
// and closes, until ctx ends; then it closes every connection within a
// moment and returns nil. Any other failure of the listener is returned.
func (s *Server) ServeMetrics(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.MetricsHandler(),
		ReadHeaderTimeout: metricsReadHeaderTimeout,
		ReadTimeout:       metricsReadTimeout,
		WriteTimeout:      metricsWriteTimeout,
		IdleTimeout:       metricsIdleTimeout,
		MaxHeaderBytes:    metricsMaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	serve := func() error {
		return srv.Serve(&cappedListener{Listener: ln, slots: make(chan struct{}, MaxMetricsConnections)})
	}
	return httpserve.Serve(ctx, srv, metricsShutdownTimeout, serve, nil)
}

// cappedListener accepts up to cap(slots) connections at once and closes
// the ones past it as they come.
type cappedListener struct {
	net.Listener
	slots chan struct{}
}

func (l *cappedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &slotConn{Conn: c, free: func() { <-l.slots }}, nil
		default:
			c.Close()
		}
	}
}

// slotConn gives its slot back once, at its first Close.
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}
