// Package bench holds what the whole-process benchmark (cmd/assetd-bench,
// run by `make bench`) shares with the in-process profile benchmark in
// this package: a deterministic origin of avatars, published as an
// origin-protocol tree, and the minimal static file server that serves it
// to every contender alike and counts the bytes it sends per path.
//
// The daemon's packages never import it (docs/architecture.md, "Layering").
// Its tests are benchmarks, and one check of the
// origin, cheap enough for `make test`.
package bench
