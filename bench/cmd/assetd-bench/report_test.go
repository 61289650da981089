package main

import (
	"math"
	"testing"
)

func TestTable(t *testing.T) {
	got := table([]row{
		{"cold preload", "1.00 s", "2.00 s", "0.50", "≤ 1.0", "yes"},
		{figure: "binary | size", assetd: "9.0 MiB"},
	})
	want := "| figure | assetd | contender | ratio | target | met? |\n" +
		"|---|---:|---:|---:|---|---|\n" +
		"| cold preload | 1.00 s | 2.00 s | 0.50 | ≤ 1.0 | yes |\n" +
		"| binary \\| size | 9.0 MiB | — | — | — | — |\n"
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	if !math.IsNaN(median(nil)) {
		t.Error("median of nothing is not NaN")
	}
}
