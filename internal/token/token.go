// Package token holds the rule every session token passes, whichever way
// it comes: a token file (internal/config), the API's PUT /v1/session
// (internal/api) or the CLI's `assetd session` (cmd/assetd). It is a
// package of its own so that those three share the rule without the API
// server importing the configuration's TOML parser.
package token

import (
	"fmt"
	"strings"
	"unicode"
)

// MaxBytes bounds a session token: a bearer token is well under this.
const MaxBytes = 64 << 10

// Check is the rule: at most MaxBytes, and no space or control character
// anywhere (it would corrupt the Authorization header). The error never
// quotes the token.
func Check(tok string) error {
	if len(tok) > MaxBytes {
		return fmt.Errorf("the token is longer than %d bytes", MaxBytes)
	}
	if i := strings.IndexFunc(tok, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return fmt.Errorf("the token has a space or control character at byte %d", i)
	}
	return nil
}
