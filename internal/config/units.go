package config

import (
	"fmt"
	"io/fs"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written in TOML as a string such as "250ms",
// "30s" or "6h" (time.ParseDuration syntax). A bare TOML integer is refused:
// it would silently mean nanoseconds.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// UnmarshalText parses a time.ParseDuration string.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration like \"250ms\", \"30s\" or \"6h\"", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes d in the shortest form UnmarshalText reads back.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// String is d without zero trailing units: "6h", "1h30m", "250ms", "0".
func (d Duration) String() string {
	if d == 0 {
		return "0"
	}
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Size is a byte count, written in TOML as an integer (bytes) or a string
// with a unit: "4GiB", "256MiB", "1.5GB", "512KiB", "100B". Binary (KiB, MiB,
// GiB, TiB) and decimal (kB, MB, GB, TB) units are accepted, in any case;
// the one-letter forms ("4G") are refused as ambiguous.
type Size int64

var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
}

// UnmarshalText parses a size string.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := parseSize(string(b))
	if err != nil {
		return err
	}
	*s = Size(v)
	return nil
}

func parseSize(text string) (int64, error) {
	bad := func(why string) error {
		return fmt.Errorf("%q is not a size like \"4GiB\", \"256MiB\" or 1048576: %s", truncate(text), why)
	}
	t := strings.TrimSpace(text)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.' || t[i] == '_') {
		i++
	}
	num, unit := strings.ReplaceAll(t[:i], "_", ""), strings.ToLower(strings.TrimSpace(t[i:]))
	if num == "" || strings.Count(num, ".") > 1 || num[0] == '.' || num[len(num)-1] == '.' {
		return 0, bad("no number")
	}
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, bad("unknown unit " + strconv.Quote(t[i:]) + " (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)")
	}
	if len(num) > 40 {
		return 0, bad("too large")
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, bad("no number")
	}
	r.Mul(r, new(big.Rat).SetInt64(mult))
	if !r.IsInt() {
		return 0, bad("not a whole number of bytes")
	}
	n := r.Num()
	if !n.IsInt64() || n.Int64() > math.MaxInt64/2 {
		return 0, bad("too large")
	}
	return n.Int64(), nil
}

// MarshalText writes s as String does.
func (s Size) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// String is s in the largest binary unit that holds it exactly ("4GiB"),
// else in decimal units ("1500MB"), else in bytes ("1000B").
func (s Size) String() string {
	if s == 0 {
		return "0"
	}
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}} {
		if s%Size(u.n) == 0 {
			return strconv.FormatInt(int64(s)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(s), 10) + "B"
}

// Mode is a file permission, written in TOML as an octal string ("0660") or
// an octal integer (0o660).
type Mode uint32

// FileMode returns m as permission bits.
func (m Mode) FileMode() fs.FileMode { return fs.FileMode(m) & fs.ModePerm }

// UnmarshalText parses an octal string such as "0660".
func (m *Mode) UnmarshalText(b []byte) error {
	s := strings.TrimPrefix(strings.TrimPrefix(string(b), "0o"), "0O")
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || s == "" || s[0] == '+' {
		return fmt.Errorf("%q is not an octal mode like \"0660\"", truncate(string(b)))
	}
	*m = Mode(v)
	return nil
}

// MarshalText writes m as String does.
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// String is m in octal with a leading zero: "0660".
func (m Mode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

func truncate(s string) string {
	const max = 64
	if len(s) > max {
		return s[:max] + "..."
	}
	return s
}
