package main

import (
	"context"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
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

// TestIdleCPU runs the idle-CPU row's measurement on a process that
// sleeps, and cpuTime on this one while it works.
func TestIdleCPU(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	frac, err := idleCPU(context.Background(), cmd.Process.Pid, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if frac < 0 || frac >= idleCPUTarget*10 {
		t.Errorf("a sleeping process used %.3f%% of a core", 100*frac)
	}
	before, err := cpuTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	x, deadline := 0.0, time.Now().Add(10*time.Second)
	for after := before; after-before < 20*time.Millisecond; after, _ = cpuTime(os.Getpid()) {
		if time.Now().After(deadline) {
			t.Fatalf("10 s of work and cpuTime moved from %v to %v", before, after)
		}
		for i := range 1_000_000 {
			x += math.Sqrt(float64(i))
		}
	}
	_ = x
}

func TestPriorityRows(t *testing.T) {
	p := priorityResult{pairs: []priorityPair{
		{alone: 1, beside: 3, bgSent: 10, bgWant: 10},
		{alone: 1, beside: 1.2, bgSent: 10, bgWant: 10},
		{alone: 2, beside: 2.6, bgSent: 10, bgWant: 10},
	}}
	if r := p.ratio(); r != 1.3 {
		t.Errorf("ratio %v, want the median of 3, 1.2 and 1.3", r)
	}
	rows := p.rows()
	if len(rows) != 2 || rows[0].met != "yes" || rows[1].met != "yes" {
		t.Errorf("rows %+v", rows)
	}
	p.pairs[1].bgSent = 12 // a byte fetched twice
	if rows := p.rows(); rows[1].met == "yes" {
		t.Error("bytes fetched twice met the target")
	}
	if rows := (priorityResult{err: "boom"}).rows(); len(rows) != 1 || !strings.Contains(rows[0].met, "boom") {
		t.Errorf("rows of a failed scenario %+v", rows)
	}
}
