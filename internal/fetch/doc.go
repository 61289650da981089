// Package fetch owns assetd's side of the origin protocol
// (docs/origin-protocol.md): it fetches and validates avatar manifests and
// streams asset blobs into a caller's Sink. Every failure it returns is an
// *errcode.Error mapped from the origin's answer exactly as the protocol's
// error table says, carrying phase, avatar ID, transient and, where they
// apply, reason, HTTP status, server code and asset.
//
// A request passes these layers, each small and in its own file:
//
//	retry.go      go-retryablehttp: exponential backoff with jitter, the
//	              protocol's retry policy (network, 408, 429, 5xx; never a
//	              cancelled context), Retry-After up to RetryWaitMax (a
//	              longer one ends the retries), logging through slog
//	transport.go  every attempt and redirect hop: the per-host request
//	              limiter, X-App-ID and Authorization only to the origin's
//	              and mirrors' scheme, host and port, and a monitor that
//	              ends an attempt whose headers are late (AttemptTimeout) or
//	              whose body stops or trickles (the stall watchdog)
//	limit.go      the per-host request limiter; bandwidth.go the bandwidth
//	              limiter shared by all blob bodies; gate.go the download
//	              cap; all three put interactive work first (limit.go's
//	              WithBackground marks the rest):
//	              an interactive download starts beside background ones at
//	              the cap and takes the bandwidth, background readers
//	              pausing on what it leaves (at least a tenth); waiters
//	              queue round-robin across the callers they work for
//	              (caller.FromContext), and a waiter that gives up charges
//	              nothing
//	manifest.go   bounded, decompressed, parsed, verified manifests; ETag
//	              revalidation; Cache-Control max-age; mirror failover
//	download.go   resume with Range, 200/206/416 handling, size and sha256
//	              checks with bounded re-downloads; copy.go streams bodies
//	              with read-ahead; urls.go picks blob URLs
//	errors.go     the protocol's error table, redirects' rules
//	successor.go  a reload's new Client takes over the old one's download
//	              cap, queue, limiters and counters (Client.Successor), so
//	              downloads before and after a reload share them
//
// fetch knows nothing of the store: a download writes to a Sink (the
// store's ingest writer implements it), which hashes what it is given;
// fetch only compares Sink.Digest with the manifest at the end, and the
// caller commits. fetch imports caller, errs, fair, manifest and version,
// never store, manager or api.
package fetch
