package api

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
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
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), metricsShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
