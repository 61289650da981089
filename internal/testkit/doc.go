// Package testkit holds the helpers that the end-to-end suite (e2e/) and
// the reliability suite (reliability/) share: it builds the assetd binary
// once per test binary (Main), runs `assetd serve` as a child process on a
// short temp dir with its own socket, state dir and config (Env, Proc),
// stops it with SIGTERM or SIGKILL, reads a process's figures from /proc
// (Status, FDCount, UnixFDs), fills a small tmpfs (MountTmpfs, Fill), and
// serves avatars of random bytes from an httptest origin that speaks
// docs/origin-protocol.md, fails, corrupts and stalls on demand, and
// counts what it answers (Origin, Avatar, CheckFiles). That origin is the
// only fake one: the in-package tests of fetch and manager use it too, so
// that a protocol change touches one fake.
//
// It is for tests only: no production code may import it (the layering
// table of docs/architecture.md lets no package do so). It imports no
// production package beyond apitype and errs, so that fetch's and
// manager's in-package tests can import it without a cycle; the daemon
// under test is the binary, never linked in.
package testkit
