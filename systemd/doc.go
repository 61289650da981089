// Package systemd holds no Go code: it is the home of assetd's systemd
// units (assetd.service, assetd.socket) and their sysusers.d and tmpfiles.d
// snippets, and of the test that checks them with systemd's own tools and
// against the configuration defaults (internal/config).
package systemd
