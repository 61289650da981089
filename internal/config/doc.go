// Package config reads assetd's TOML configuration. The keys are those of
// the configuration contract (docs/config.md) and a few more;
// configs/assetd.toml documents every one, and a test keeps it equal to
// Default.
//
// Decoding is strict: an unknown key, a value of the wrong type or a value
// out of bounds is an *Error naming the file, the line and the key, as in
//
//	/etc/assetd/assetd.toml:12: key fetch.concurrency: must be between 1 and 64
//
// Load layers the file over Default and then the environment (ASSETD_CONFIG,
// ASSETD_SOCKET, ASSETD_STATE_DIR). Secrets never live in a Config: the
// session token is read from a file (origin.session_token_file, or the
// systemd credential $CREDENTIALS_DIRECTORY/session-token) by SessionToken,
// each time it is wanted, and a Config logs and prints without it.
//
// config must not import fetch, store, manager or api (the layering table
// of docs/architecture.md): they are configured from a Config by the
// daemon, never the other way round. Nor may they import config: the TOML
// parser stays out of them (the token rule is internal/token).
package config
