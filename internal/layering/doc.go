// Package layering keeps assetd's packages in their layers. Its test reads
// the table of allowed imports in docs/architecture.md (section
// "Layering"), lists the module's real dependency graph with
// `go list -deps -json ./...` and fails on any import the table does not
// allow, as tailscale's tstest/deptest does for its binaries.
//
// It is a package of its own, rather than a test at the module root,
// because the module root has no Go package (one made for the test would
// be importable as github.com/assetd/assetd) and because the table is
// about the whole graph, not about any one package. It holds no code: the
// table is the documentation, and the test is in layering_test.go.
package layering
