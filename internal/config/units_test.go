package config

import (
	"testing"
	"time"
)

func TestSize(t *testing.T) {
	good := []struct {
		in   string
		want int64
		str  string
	}{
		{"0", 0, "0"},
		{"100", 100, "100B"},
		{"100B", 100, "100B"},
		{"1kB", 1000, "1kB"},
		{"512KiB", 512 << 10, "512KiB"},
		{"256MiB", 256 << 20, "256MiB"},
		{"4GiB", 4 << 30, "4GiB"},
		{"4gib", 4 << 30, "4GiB"},
		{"1.5GB", 1_500_000_000, "1500MB"},
		{"1.5 GiB", 3 << 29, "1536MiB"},
		{"1_000_000", 1_000_000, "1MB"},
		{"1TiB", 1 << 40, "1TiB"},
		{"1023", 1023, "1023B"},
	}
	for _, g := range good {
		var s Size
		if err := s.UnmarshalText([]byte(g.in)); err != nil {
			t.Errorf("%q: %v", g.in, err)
			continue
		}
		if int64(s) != g.want || s.String() != g.str {
			t.Errorf("%q = %d %q, want %d %q", g.in, s, s, g.want, g.str)
		}
		var back Size
		if err := back.UnmarshalText([]byte(s.String())); err != nil || back != s {
			t.Errorf("%q: String %q does not parse back: %v", g.in, s, err)
		}
	}
	for _, in := range []string{"", "G", "4G", "4 K", "1.2.3MB", ".5GB", "5.GB", "0.1KiB", "-1", "1e9", "99999999999TiB", "4GiBs", "1/2GB"} {
		var s Size
		if err := s.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted as %d", in, s)
		}
	}
}

func TestDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"250ms": 250 * time.Millisecond, "6h": 6 * time.Hour, "0": 0, "1h30m": 90 * time.Minute} {
		var d Duration
		if err := d.UnmarshalText([]byte(in)); err != nil || d.Std() != want {
			t.Errorf("%q = %v, %v", in, d, err)
		}
		if d.String() != in {
			t.Errorf("%q prints as %q", in, d)
		}
	}
	for in, want := range map[Duration]string{Duration(time.Minute): "1m", Duration(168 * time.Hour): "168h", Duration(61 * time.Second): "1m1s", Duration(3601 * time.Second): "1h0m1s"} {
		if in.String() != want {
			t.Errorf("%d prints as %q, want %q", int64(in), in, want)
		}
	}
	var d Duration
	for _, in := range []string{"", "30", "5 m", "1d"} {
		if err := d.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestMode(t *testing.T) {
	for in, want := range map[string]Mode{"0660": 0o660, "660": 0o660, "0o640": 0o640, "0600": 0o600} {
		var m Mode
		if err := m.UnmarshalText([]byte(in)); err != nil || m != want {
			t.Errorf("%q = %v, %v", in, m, err)
		}
	}
	for _, in := range []string{"", "rw-rw----", "0680", "-1", "+660"} {
		var m Mode
		if err := m.UnmarshalText([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if s := Mode(0o660).String(); s != "0660" {
		t.Errorf("String = %q", s)
	}
}
