// Package printable says whether text is safe to show as it is: valid
// UTF-8 with every character printable (unicode.IsPrint), so that a name
// holding an escape sequence or a control character cannot drive the
// terminal or log it is written to. internal/config checks values with it;
// internal/publish and the CLI quote names with it.
package printable

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// String reports whether s is valid UTF-8 and every character of it is
// printable (unicode.IsPrint: letters, marks, numbers, punctuation,
// symbols and the ASCII space).
func String(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Quote is s as a terminal may show it: unchanged when String(s), else
// quoted with Go's escapes (strconv.Quote).
func Quote(s string) string {
	if String(s) {
		return s
	}
	return strconv.Quote(s)
}
