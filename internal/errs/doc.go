// Package errs is assetd's one error taxonomy: the client SDKs' error codes
// (with their Web, iOS and Android spellings, descriptions and recovery
// texts), the codes assetd adds for its local API, and the Error type that
// carries a code from the place a failure is understood up to the socket
// and the command line.
//
// Every failure that reaches a client is an *Error. It is built once, where
// the failure is understood (fetch knows an origin answered 429, store knows
// a digest did not match), and wrapped with %w on the way up. HTTPStatus and
// ExitCode are the only places that turn codes into numbers.
//
// A Code is itself an error value, so errors.Is(err, errs.AvatarAssetMissing)
// asks "does err carry this code?".
//
// errs imports only the standard library; every other package may import it.
package errs
