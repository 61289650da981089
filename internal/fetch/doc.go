// Package fetch owns assetd's side of the origin protocol
// (docs/origin-protocol.md): it fetches and validates avatar manifests and
// streams asset blobs into a caller's Sink, with retries (exponential
// backoff with jitter, Retry-After honoured), a request rate limit per
// origin host, a bandwidth limit shared by all downloads of a Client, a cap
// on concurrent downloads that lets interactive loads go before background
// ones, resume with Range, a stall watchdog and size and sha256 checks.
// Every failure it returns is an *errs.Error mapped from the origin's answer
// exactly as the protocol's error table says.
//
// fetch knows nothing of the store: a download writes to a Sink (the
// store's ingest writer implements it) and the caller commits it. It
// imports errs, manifest and version, never store or manager.
package fetch
