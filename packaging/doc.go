// Package packaging builds assetd's Debian packages (see cmd/mkdeb) from
// the static binaries of `make dist`: the binary in /usr/bin, the systemd
// units, sysusers.d and tmpfiles.d entries from systemd/, the documented
// configuration as the conffile /etc/assetd/assetd.toml, the man pages and
// shell completions of `assetd docgen`, and the maintainer scripts in
// debian/. Everything is derived from its inputs and SOURCE_DATE_EPOCH, so
// two builds of one commit give the same bytes; dpkg-deb does the archiving.
//
// The tests check the pieces quickly; with ASSETD_PACKAGING_TEST=1 (make
// package-test) they build the release twice, compare the bytes, inspect
// the packages with dpkg-deb and lintian, run the binaries under qemu-user
// and install, remove and purge the amd64 package in a throwaway root.
package packaging
