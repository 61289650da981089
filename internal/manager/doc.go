// Package manager is assetd's AvatarManager: it joins internal/fetch (the
// origin) and internal/store (the cache on disk) into the calls the SDKs'
// AvatarManager offers, for every process on the device.
//
// It owns the loads in flight. Concurrent loads of one avatar share one
// flight: one goroutine owned by the Manager, with its own context, makes
// one manifest request and one download per missing blob; every caller
// waits on it and gets the same events and result. A caller's context ends only its
// own wait; CancelLoading, CancelAll and Close end the load itself. A blob
// wanted by several avatars is downloaded once: the store's per-digest
// ingest lock serialises them and the manager re-checks the blob after it
// gets the lock.
//
// A load is: revalidate or fetch the manifest, lease the new version's
// blobs (store.Lease: nothing collects them until the Put has referenced
// them), make room (store.EnsureSpace), download each missing blob into the store's ingest writer (resuming any
// partial), commit it, then store.Put the new version. The old version stays
// current until Put, so a failed or cancelled load leaves the cache as it
// was, with its partial files kept for the next load to resume (bad bytes
// and a full disk are the exceptions: those partials are dropped). A
// cached avatar whose origin cannot be reached (a transient failure of the
// manifest or of the new version's blobs) is served with state stale; a
// permanent failure (404, auth) fails the load and leaves the cache as it
// was. Preload and Refresh (the duty package's preload list) are background
// loads that pin; Refresh revalidates even an avatar fresh by its max-age,
// and both report the transient error when the avatar was served stale, so
// that the preloader backs off.
//
// By file:
//
//	manager.go the Manager: New, Close, SetFetcher, Metrics
//	load.go    the entry points (Load, Start, Preload, Refresh) and the
//	           fresh-cache path, which answers with no flight at all
//	flight.go  the flight: join (start or join one, with its waiters),
//	           cancel and commit, progress events
//	admit.go   the caps on flights and the fair queue behind them
//	run.go     a flight's goroutine: the version fetch (manifest, 304,
//	           stale serving), the Put, the end (events, log)
//	blobs.go   the missing blobs' downloads, resuming partials
//	wait.go    what a flight waits for (queue, retries), in its events
//	cancel.go  CancelLoading, CancelAll, RetryAuthFailed
//	errors.go  the manager's errors
//	cache.go   Retrieve, damage and healing, Clear*, pins, sizes, lists
//	views.go   the API form of a cached avatar, its fixed part cached
//	verify.go  Verify, the re-hash of an avatar's blobs
//	trust.go   the trusted keys' verdicts on cached manifests
//	import.go  Import, an avatar streamed in as tar
//	events.go  waiters' and subscribers' event queues
//
// Retrieve never touches the network: it reads the store's in-memory index,
// stats the avatar's files and converts to the API form through a view
// cached per manifest. Files found missing make the avatar damaged (with a
// state event) and nothing more: Verify (the scrub, the daemon's blob
// watcher) drops them and, with SelfHeal, fetches them again; so does the
// next load.
//
// Events (progress, completed, failed and state changes) go to each load's
// waiters, in order, and to Subscribe's subscribers, who lose events when
// they fall behind rather than slow a load down.
//
// manager imports fetch, store, manifest, errs and apitype. It must not
// import api or any HTTP server code: the socket API is a client of it.
package manager
