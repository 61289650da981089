// Package httpserve runs an http.Server until its context ends and then
// shuts it down within a bound: the one copy of that sequence for the
// daemon's API socket and metrics listener (internal/api) and for
// `assetd origin` (internal/origin).
package httpserve

import (
	"context"
	"errors"
	"net/http"
	"time"
)

// Serve runs serve (srv.Serve or srv.ServeTLS on a listener, which it
// owns) in a goroutine it waits for. A failure of serve before ctx ends
// is returned as it is. When ctx ends, srv stops accepting and requests in
// flight get up to grace to finish (srv.Shutdown); past that, forced (when
// not nil) is told Shutdown's error and every connection is closed
// (srv.Close). Serve returns nil after a shutdown caused by ctx, once the
// serve goroutine has returned, unless serve itself failed otherwise.
func Serve(ctx context.Context, srv *http.Server, grace time.Duration, serve func() error, forced func(error)) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		if forced != nil {
			forced(err)
		}
		srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
