package store

import (
	"context"
	"io"
)

// The store's life of a blob, in order. Each step is durable before the
// next starts, so a crash at any instant leaves the old state or the new:
//
//  1. ingest:    Ingest takes the digest's lock and opens ingest/<hex>,
//     re-hashing bytes a previous run left there; the caller writes the rest
//     (the Writer hashes while writing).
//  2. verify:    Commit fsyncs the data and checks size and sha256. A
//     mismatch deletes the partial; nothing reaches blobs/.
//  3. commit:    the file is made 0444 (0440 and the daemon's group for an
//     import's file, CommitSpool), renamed to blobs/sha256/<hex>, the
//     directory is fsynced, and only then is the blob indexed (committed,
//     no references yet). Commits arriving together share the directory's
//     fsync and the index transaction (a group commit, commit.go). A blob
//     already committed is success.
//  4. reference: Put makes an avatar version current; each distinct digest
//     of each current version holds one reference.
//  5. collect:   when a Put, Delete or eviction drops a blob's last
//     reference, its index record goes in the same transaction and its
//     file right after. Open deletes files the index does not know.

// Provider reads committed blobs.
type Provider interface {
	HasBlob(digest string) bool
	BlobPath(digest string) string
}

// Ingester writes blobs, one writer per digest at a time.
type Ingester interface {
	Ingest(ctx context.Context, digest string, size int64) (*Writer, error)
	Partial(digest string) int64
}

// Referencer moves avatar versions, and with them blob references.
type Referencer interface {
	Put(a *Avatar) error
	Delete(id string) error
}

// Verifier checks blobs at rest and drops damaged ones.
type Verifier interface {
	VerifyBlob(ctx context.Context, digest string) error
	CheckAvatar(id string) (damaged []string)
	RemoveBlob(digest string) error
}

// sink mirrors fetch.Sink, which a *Writer must satisfy; store does not
// import fetch.
type sink interface {
	io.Writer
	Size() int64
	Digest() string
	Truncate() error
}

var (
	_ sink       = (*Writer)(nil)
	_ Provider   = (*Store)(nil)
	_ Ingester   = (*Store)(nil)
	_ Referencer = (*Store)(nil)
	_ Verifier   = (*Store)(nil)
)
