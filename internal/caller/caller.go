// Package caller carries the identity of the local process a request came
// from, as the socket's peer credentials gave it, in the request's
// context, for what is decided per caller. api sets it. (The daemon never acts with a caller's rights: an import's
// files are read by the client and streamed.)
package caller

import "context"

// ID is a caller's credentials.
type ID struct {
	UID, GID uint32
	PID      int32
}

type key struct{}

// NewContext returns ctx carrying id.
func NewContext(ctx context.Context, id ID) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// FromContext returns the caller of ctx, and false when ctx carries none
// (work the daemon does for itself).
func FromContext(ctx context.Context) (ID, bool) {
	id, ok := ctx.Value(key{}).(ID)
	return id, ok
}
