package token

import (
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, tok, want string // want: a part of the error, "" for none
	}{
		{"plain", "abc.DEF-123_~+/=", ""},
		{"empty", "", ""},
		{"longest", strings.Repeat("a", MaxBytes), ""},
		{"too long", strings.Repeat("a", MaxBytes+1), "longer than 65536 bytes"},
		{"space", "abc def", "space or control character at byte 3"},
		{"newline", "abc\n", "space or control character at byte 3"},
		{"tab", "\tabc", "at byte 0"},
		{"nul", "ab\x00c", "at byte 2"},
		{"unicode space", "ab\u00a0c", "at byte 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.tok)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Check: %v, want an error with %q", err, tc.want)
			case err != nil && len(tc.tok) > 0 && len(tc.tok) < 100 && strings.Contains(err.Error(), tc.tok):
				t.Fatalf("the error %q quotes the token", err)
			}
		})
	}
}
