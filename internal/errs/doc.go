// Package errs is assetd's one error taxonomy, the daemon's side of it.
// The client-facing vocabulary (the codes and their table, the phases, the
// reasons, the Error type and its wire body) is defined once, in the public
// package apitype/errcode, and the daemon names it there; errs adds what
// stays inside assetd and declares none of that vocabulary again
// (TestNoVocabularyHere).
//
// Every failure that reaches a client is an *errcode.Error. It is built once, where
// the failure is understood (fetch knows an origin answered 429, store knows
// a digest did not match), and wrapped with %w on the way up. HTTPStatus and
// ExitCode are the only places that turn codes into numbers; Facts.Hint
// chooses the next step a message names.
//
// A Code is itself an error value, so errors.Is(err, errcode.AvatarAssetMissing)
// asks "does err carry this code?".
//
// Every other package may import errs (docs/architecture.md, "Layering").
package errs
