// Package errcode is the client-facing half of assetd's error taxonomy:
// the codes (the client SDKs' codes with their Web, iOS and Android
// spellings, descriptions and recovery texts, and the codes assetd adds for
// its local API), the phases, the reasons that refine a code, the Error
// type the Go client returns and the error body of the local API
// (docs/api.md, "Errors").
//
// A program that talks to assetd matches on a code and a reason, never on
// a message or a hint:
//
//	var e *errcode.Error
//	if errors.As(err, &e) && e.Reason == errcode.ReasonDamaged { ... }
//	if errors.Is(err, errcode.DaemonNotRunning) { ... }
//
// The daemon's side (turning any error into an *Error, the HTTP status it
// is answered with, the command line's exit code and hints) is
// internal/errs, which builds on this package; errcode imports only the
// standard library.
package errcode
