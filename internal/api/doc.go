// Package api is assetd's local API: HTTP/1.1 and JSON on a Unix socket
// (the contract in docs/api.md). It owns the socket
// server, the routes, the checks every request passes (peer credentials,
// no browser headers, no path tricks, body limits) and the wire encoding of
// answers and NDJSON streams.
//
// It does not own avatars: every route calls one method of Manager, an
// interface declared here with exactly the methods the routes need, so api
// never imports internal/manager, internal/store or internal/fetch (nor
// internal/config: see docs/architecture.md, "Layering"). The
// daemon adapts its *manager.Manager in a few lines (LoadOptions has the
// manager's fields, so manager.LoadOptions(o) converts it).
//
// Order of the checks, each answered with the {"error":{...}} body of
// errcode.Envelope and nothing changed:
//
//  1. peer credentials (SO_PEERCRED, checked once per connection) and the
//     Origin and Referer headers: 403 forbidden;
//  2. the request target: absolute-form URIs, "..", ".", "//" and encoded
//     dots, slashes or backslashes: 400 badRequest, never a redirect;
//  3. a declared body over 64 KiB: 413 payloadTooLarge;
//  4. the route: 404 notFound; the avatar ID: 400 avatarIDUnrecognized;
//     the method: 405 methodNotAllowed with an Allow header;
//  5. query values and JSON bodies: 400 badRequest (413 when a body grows
//     past the limit while it is read).
//
// api imports apitype, errs, manifest (ValidateID) and version only.
package api
