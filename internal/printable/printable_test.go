package printable

import "testing"

func TestString(t *testing.T) {
	for _, tc := range []struct {
		s    string
		want bool
	}{
		{"", true},
		{"rohan v1.2 (ß, 日本)", true},
		{"a\tb", false},
		{"a\nb", false},
		{"\x1b[31mred", false},
		{"a\u00a0b", false}, // no-break space: not IsPrint
		{"\xff", false},
		{"a\u202eb", false}, // right-to-left override
	} {
		if got := String(tc.s); got != tc.want {
			t.Errorf("String(%q) = %v, want %v", tc.s, got, tc.want)
		}
	}
}

func TestQuote(t *testing.T) {
	for s, want := range map[string]string{
		"mei":         "mei",
		"with space":  "with space",
		"\x1b[2Jboom": `"\x1b[2Jboom"`,
		"line\nbreak": `"line\nbreak"`,
		"bad\xffbyte": `"bad\xffbyte"`,
	} {
		if got := Quote(s); got != want {
			t.Errorf("Quote(%q) = %s, want %s", s, got, want)
		}
	}
}
