// Package publish turns a folder of avatars into an origin tree that any
// static file server, CDN or `assetd origin` can serve (docs/origin-protocol.md),
// and owns the ed25519 signing keys that `assetd keygen` makes.
//
// Input (SRC): one folder per avatar, named by its avatar ID. Every regular
// file under it is an asset, its path relative to the folder; a VERSION
// file at the folder's top names the version and is not an asset.
// Top-level entries of SRC that are not folders, and hidden ones (".git"),
// are skipped and reported.
//
// Output (OUT):
//
//	OUT/v1/avatars/{id}/manifest     canonical JSON (RFC 8785), signed when a key is given
//	OUT/v1/blobs/sha256/{hex}        one file per distinct content, named by its sha256
//
// Publishing is idempotent and additive: a blob that already exists with
// the right size is not rewritten, a manifest whose bytes did not change is
// not rewritten, and nothing in OUT is ever deleted (clients may still be
// downloading an older version's blobs). Every file is written to a
// temporary name, fsynced and renamed, and blobs go in before the
// manifests that name them, so a reader never sees a manifest whose blobs
// are missing nor a half-written file. A changed manifest gets an mtime in
// a later whole second than the one it replaces: static servers derive
// their validators from mtime seconds and size (nginx's ETag), and a
// republished manifest usually keeps its size.
//
// SRC is read through an os.Root: a symlink may point to a file elsewhere
// in SRC, but one that leads outside SRC (or is absolute), a symlinked
// folder, or any special file makes the whole publish fail before anything
// is written. Avatar IDs and asset paths are checked with the manifest
// package's rules, and every manifest passes manifest.Parse before it is
// written.
//
// Signing keys: the private key file holds the base64 of the 64-byte
// ed25519 private key (Go's seed-then-public form) on one line, mode 0600;
// a PEM PKCS#8 key ("openssl genpkey -algorithm ed25519") is read too. The
// public key file holds the base64 of the 32-byte public key, the form
// origin.trusted_keys takes. A manifest's keyId is the first 8 hex digits
// of the public key's sha256.
//
// Errors are plain errors, not client codes: they describe the
// publisher's input, never a failed download. A name with a character a
// terminal would act on is quoted (Quote) in every error, and a file over
// the 4 GiB an asset may be is refused on its size before it is read.
//
// publish imports errs, manifest and the standard library only.
package publish
