package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// only runs one part of the bench, named by -only, against the origin
// run has set up, and prints its rows (no -out):
//   - "socket": a daemon with every avatar cached, then -trials socket
//     trials of it and of the bare handler, alternating which goes first;
//   - "idle": -rounds cold preloads through a fresh daemon each, with its
//     peak RSS after the preload and its RSS -idle later.
func (c *cold) only(ctx context.Context, res *results) error {
	var rows []row
	var series string
	switch c.o.only {
	case "socket":
		dir := filepath.Join(c.work, "cached")
		d, err := startDaemon(c.o.assetd, dir, daemonConfig(dir, c.base, ""))
		if err != nil {
			return err
		}
		defer d.stop()
		if _, err := d.waitReady(ctx); err != nil {
			return err
		}
		if _, err := d.client(ctx, append([]string{"preload"}, c.ids...)...); err != nil {
			return err
		}
		if err := checkEntries(ctx, d, len(c.ids)); err != nil {
			return err
		}
		if res.cached.assetd, res.cached.bare, err = c.socketTrials(ctx, d); err != nil {
			return err
		}
		if err := d.stop(); err != nil {
			return err
		}
		rows, series = res.socketRows(), res.socketSeries()
	case "idle":
		for r := range c.o.rounds {
			if _, err := c.assetd(ctx, filepath.Join(c.work, fmt.Sprintf("idle%d", r+1)), "", true); err != nil {
				return err
			}
		}
		res.mem = c.mem
		rows, series = res.memRows(), res.memSeries()
	default:
		return fmt.Errorf("-only %q: want sets, socket or idle", c.o.only)
	}
	fmt.Printf("load average %s at the start, %s at the end\n\n%s\n%s", res.loadBefore, loadAverage(), table(rows), series)
	return nil
}

// memRows are the daemon's peak RSS in the cold preload and its RSS idle later.
func (r *results) memRows() []row {
	var peaks, idles []float64
	for _, m := range r.mem {
		peaks, idles = append(peaks, float64(m.peak)), append(idles, float64(m.idle))
	}
	return []row{
		{"daemon peak RSS (VmHWM) during the cold preload", mib(median(peaks)), "", "", "≤ 64 MiB", yesNo(median(peaks) <= 64<<20)},
		{fmt.Sprintf("daemon RSS idle %s later, %d cached", r.o.idle, r.o.avatars), mib(median(idles)), "", "", "≤ 24 MiB", yesNo(median(idles) <= 24<<20)},
	}
}

func (r *results) memSeries() string {
	var b strings.Builder
	for i, m := range r.mem {
		fmt.Fprintf(&b, "- daemon memory, round %d: peak %s, idle %s\n", i+1, mib(float64(m.peak)), mib(float64(m.idle)))
	}
	return b.String()
}

// socketRows are the cached GET over the socket against the bare handler.
func (r *results) socketRows() []row {
	pick := func(rs []socketResult, f func(socketResult) float64) float64 {
		xs := make([]float64, len(rs))
		for i, s := range rs {
			xs[i] = f(s)
		}
		return median(xs)
	}
	rps := func(s socketResult) float64 { return s.rps }
	p50 := func(s socketResult) float64 { return s.p50.Seconds() }
	p99 := func(s socketResult) float64 { return s.p99.Seconds() }
	cpu := func(s socketResult) float64 { return s.cpu.Seconds() }
	ca, cb := pick(r.cached.assetd, rps), pick(r.cached.bare, rps)
	get := fmt.Sprintf("cached GET /v1/avatars/{id} over the socket, %d keep-alive clients, vs a bare net/http handler", r.o.clients)
	return []row{
		{get + ": throughput", fmt.Sprintf("%.0f req/s", ca), fmt.Sprintf("%.0f req/s", cb), ratio(ca / cb), fmt.Sprintf("≥ %.2g", cachedGetTarget), yesNo(ca/cb >= cachedGetTarget)},
		{get + ": p50 latency", us(pick(r.cached.assetd, p50)), us(pick(r.cached.bare, p50)), ratio(pick(r.cached.assetd, p50) / pick(r.cached.bare, p50)), "", ""},
		{get + ": p99 latency", us(pick(r.cached.assetd, p99)), us(pick(r.cached.bare, p99)), ratio(pick(r.cached.assetd, p99) / pick(r.cached.bare, p99)), "", ""},
		{"(context) " + get + ": the server's CPU time per request", us1(pick(r.cached.assetd, cpu)), us1(pick(r.cached.bare, cpu)), ratio(pick(r.cached.assetd, cpu) / pick(r.cached.bare, cpu)), "", ""},
	}
}

func (r *results) socketSeries() string {
	var b strings.Builder
	for i := range r.cached.assetd {
		a, z := r.cached.assetd[i], r.cached.bare[i]
		fmt.Fprintf(&b, "- socket trial %d: assetd %.0f req/s (p50 %s, p99 %s, CPU %s a request); bare %.0f req/s (p50 %s, p99 %s, CPU %s)\n",
			i+1, a.rps, us(a.p50.Seconds()), us(a.p99.Seconds()), us1(a.cpu.Seconds()), z.rps, us(z.p50.Seconds()), us(z.p99.Seconds()), us1(z.cpu.Seconds()))
	}
	return b.String()
}
