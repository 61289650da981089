// Package configs holds the documented example configuration,
// configs/assetd.toml: every key with its default and its comment. The
// packages install it as /usr/share/assetd/assetd.toml and
// /etc/assetd/assetd.toml, and `assetd docgen` makes assetd.toml(5) of it.
package configs

import _ "embed"

// Example is configs/assetd.toml.
//
//go:embed assetd.toml
var Example []byte
