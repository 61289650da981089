// Package ctxio makes a plain io.Reader heed a context: a long copy from a
// file or a request body ends with the context's error at its next Read
// instead of running to the end. It is the one home of that wrapper for
// the packages that stream a caller's files (internal/manager's import,
// internal/publish).
package ctxio

import (
	"context"
	"io"
)

// Reader returns r whose every Read first checks ctx: once ctx has ended,
// Read returns ctx.Err() and reads nothing more. A Read already blocked in
// r is not interrupted; the next one is refused.
func Reader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
