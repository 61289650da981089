// Package store is assetd's avatar cache on disk: content-addressed blobs,
// partial downloads kept for resume, and a bbolt index of avatars and blob
// reference counts. Its model is containerd's content
// store; content.go states the blob lifecycle (ingest → verify → commit →
// reference → collect) and the small interfaces it is read through.
//
// Layout of the store directory:
//
//	DIR/
//	├── index.db               bbolt index (flock'd: one process at a time)
//	├── blobs/sha256/<hex>     committed blobs, read-only: 0444, or 0440 and
//	│                          the daemon's group for those only an import
//	│                          brought (spool.go)
//	├── ingest/<hex>           partial downloads, resumed by Ingest (an
//	│                          older assetd's ingest/<hex>/data is moved
//	│                          here at Open)
//	└── tmp/spool-<random>     an import's files while they are hashed
//	                           (CommitSpool); emptied at Open
//
// Index buckets, schema version 2 (SchemaVersion):
//
//	meta/
//	    schema        → uint64 BE: the schema version
//	avatars/
//	    <avatar id>   → binary record (codec.go): current version,
//	                    manifest, manifest URL, etag, source, pinned,
//	                    state, damaged paths, fetched-at, max-age
//	manifests/
//	    <avatar id>   → the manifest as the origin sent it (signed bytes)
//	lastused/
//	    <avatar id>   → int64 BE: last use, unix ns (flushed in batches)
//	blobs/
//	    <sha256 hex>  → size | refs | committedAt (3 × int64 BE);
//	                    committedAt 0: referenced but not on disk (damaged)
//
// Partial ingests are not indexed: Open keeps the ones written to within
// a day (their files' mtime) and deletes the rest.
//
// Changes of schema are migrations (index.go), each run once in its own
// transaction: version 1 creates the buckets (and an ingest bucket),
// version 2 drops the ingest bucket.
//
// Rules the package keeps:
//   - A blob is indexed as committed only after its bytes were verified,
//     fsynced, renamed into blobs/ and the directory fsynced. No file is
//     fsynced inside a bbolt transaction.
//   - Each avatar's current version holds one reference to each distinct
//     digest it uses; a blob whose last reference goes is deleted. A blob
//     committed but never referenced (a load that failed halfway) is kept
//     an hour for the retry, then collected by Open or EnsureSpace.
//   - A leased blob (lease.go) is never collected: a load leases the
//     blobs of the version it will Put, so that making room for it never
//     takes the blobs it needs. Leases are in memory only.
//   - Open reconciles disk and index (see reconcile.go); after a crash at
//     any instant the store holds the old state or the new.
//   - Memory holds, per avatar, only what eviction and Stats need (an
//     entry: pinned, state, last use); Get decodes an avatar from the
//     index unless it is among the last few thousand read or written (the
//     hot set, hot.go), and List and Each walk the index in chunks. Blob
//     records are read from the index too (blobindex.go), their counts
//     kept in memory. Touch only updates memory, and Flush writes
//     last-use times. Raw manifests stay in the index (RawManifest).
//   - Every path is under the store directory: digests are validated with
//     manifest.ValidDigest before they become paths; avatar IDs are never
//     paths.
//
// store must not import fetch, manager or api (the layering table of
// docs/architecture.md, checked by internal/layering): its Writer
// satisfies fetch's Sink structurally, and the manager joins the two.
package store
