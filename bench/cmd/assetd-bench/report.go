package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// row is one line of the report's table.
type row struct {
	figure, assetd, contender, ratio, target, met string
}

// median of xs; NaN when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// yesNo renders a target check.
func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// table renders rows as a Markdown table.
func table(rows []row) string {
	var b strings.Builder
	b.WriteString("| figure | assetd | contender | ratio | target | met? |\n")
	b.WriteString("|---|---:|---:|---:|---|---|\n")
	cell := func(s string) string {
		if s == "" {
			return "—"
		}
		return strings.ReplaceAll(s, "|", `\|`)
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n",
			cell(r.figure), cell(r.assetd), cell(r.contender), cell(r.ratio), cell(r.target), cell(r.met))
	}
	return b.String()
}

func secs(s float64) string  { return fmt.Sprintf("%.2f s", s) }
func ms(s float64) string    { return fmt.Sprintf("%.1f ms", s*1000) }
func us(s float64) string    { return fmt.Sprintf("%.0f µs", s*1e6) }
func us1(s float64) string   { return fmt.Sprintf("%.1f µs", s*1e6) }
func mib(n float64) string   { return fmt.Sprintf("%.1f MiB", n/(1<<20)) }
func ratio(x float64) string { return fmt.Sprintf("%.2f", x) }
func mbps(bytes int64, s float64) string {
	return fmt.Sprintf("%.0f MB/s", float64(bytes)/s/1e6)
}

// series renders every value of a series, for the per-round section.
func series(xs []float64, f func(float64) string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = f(x)
	}
	return strings.Join(parts, ", ")
}
