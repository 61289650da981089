// Package reliability holds the reliability and security suite of assetd:
// a table of origin faults driven through the real store, fetcher and
// manager; a crash harness and a load test against the real binary; the
// security checks (socket mode, peer credentials, token secrecy, files
// outside store.dir, insecure origins, signatures). It has no code of its
// own, only tests.
//
// `make test` runs short versions. `make reliability` runs the long ones
// (-reliability.full) and renders their figures to docs/reliability.md
// (-reliability.report FILE).
package reliability
