package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/assetd/assetd/bench"
)

// Issue 15's targets for a cold preload of each file set.
const (
	durableTarget = 1.10 // assetd's wall time over the durable ceiling's
	ariaRawTarget = 0.5  // assetd's wall time over aria2c -x1 -j4's, unverified
	peakRSSTarget = 64 << 20
)

// cAria2Raw downloads only: no sha256sum after it.
const cAria2Raw = "aria2c -x1 -j4 (no verification)"

// fileSet is one origin of avatars whose files all have one size, so that
// the durable cost per file (an fsync, a rename, a directory fsync, an
// index record) is measured at that size.
type fileSet struct {
	name    string // as the report spells it
	key     string // its directory
	avatars []bench.Avatar
}

func fileSets() []fileSet {
	return []fileSet{
		{"20 avatars × 4 files × 2 MiB", "set-2mib", bench.Uniform("two", 20, 4, 2*bench.MiB)},
		{"10 avatars × 2 files × 8 MiB", "set-8mib", bench.Uniform("eight", 10, 2, 8*bench.MiB)},
	}
}

// setResult is one set's cold rounds.
type setResult struct {
	fileSet
	total   int64
	files   int
	times   map[string][]float64
	cpu     map[string][]float64 // CPU seconds of each round
	peaks   []float64
	missing map[string]string
}

// runSets runs, for each file set, rounds of assetd (recording its peak
// RSS), the durable ceiling and aria2c without verification, each set from
// its own origin.
func runSets(ctx context.Context, o options, self, work string) ([]setResult, error) {
	var out []setResult
	for _, s := range fileSets() {
		r, err := runSet(ctx, o, self, filepath.Join(work, s.key), s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func runSet(ctx context.Context, o options, self, work string, s fileSet) (setResult, error) {
	fmt.Fprintf(os.Stderr, "generating %s in %s\n", s.name, work)
	src, site := filepath.Join(work, "src"), filepath.Join(work, "site")
	if err := bench.WriteSource(src, s.avatars, bench.Version); err != nil {
		return setResult{}, err
	}
	if err := bench.Publish(ctx, src, site); err != nil {
		return setResult{}, err
	}
	// The source is not served; only the published tree is.
	if err := os.RemoveAll(src); err != nil {
		return setResult{}, err
	}
	ids := bench.IDs(s.avatars)
	items, err := bench.Items(site, ids)
	if err != nil {
		return setResult{}, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return setResult{}, err
	}
	srv := &http.Server{Handler: bench.NewOrigin(site)}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	c := &cold{o: o, self: self, work: work, base: "http://" + ln.Addr().String(), ids: ids, items: items, lists: filepath.Join(work, "lists")}
	if err := c.writeLists(); err != nil {
		return setResult{}, err
	}
	var peaks []float64
	cpu := map[string][]float64{}
	daemon := func(name, fetchTOML string) contender {
		return contender{name, func(ctx context.Context, dir string) (time.Duration, error) {
			took, peak, used, err := c.assetdPeak(ctx, dir, fetchTOML)
			peaks = append(peaks, float64(peak))
			cpu[name] = append(cpu[name], used.Seconds())
			return took, err
		}}
	}
	ks := []contender{
		daemon(cAssetdNL, noLimit),
		{cCeilingFS, func(ctx context.Context, dir string) (time.Duration, error) {
			took, used, err := c.ceilingCPU(ctx, dir, true)
			cpu[cCeilingFS] = append(cpu[cCeilingFS], used.Seconds())
			return took, err
		}},
		daemon(cAssetd, ""),
	}
	c.missing = map[string]string{}
	if _, err := exec.LookPath("aria2c"); err != nil {
		c.missing[cAria2Raw] = "aria2c not available"
	} else {
		ks = append(ks, contender{cAria2Raw, c.aria2Raw})
	}
	times, err := c.roundsOf(ctx, ks)
	if err != nil {
		return setResult{}, err
	}
	return setResult{fileSet: s, total: bench.TotalSize(items), files: len(items), times: times, cpu: cpu, peaks: peaks, missing: c.missing}, nil
}

// assetdPeak is a cold `assetd preload` of every avatar, the daemon's
// peak RSS (VmHWM) after it and the CPU time of the preload: the daemon's
// from ready to the end of the preload, and the client's.
func (c *cold) assetdPeak(ctx context.Context, dir, fetchTOML string) (took time.Duration, peak int64, cpu time.Duration, err error) {
	d, took, err := c.preload(ctx, dir, fetchTOML)
	if err != nil {
		return 0, 0, 0, err
	}
	defer d.stop()
	if peak, _, err = memStatus(d.pid()); err != nil {
		return 0, 0, 0, err
	}
	if cpu, err = cpuTime(d.pid()); err != nil {
		return 0, 0, 0, err
	}
	return took, peak, cpu - d.readyCPU + d.clientCPU, d.stop()
}

func (c *cold) aria2Raw(ctx context.Context, dir string) (time.Duration, error) {
	return timed(ctx, dir,
		[]string{"aria2c", "-q", "-j4", "-x1", "--allow-overwrite=true", "--auto-file-renaming=false",
			"-d", dir, "-i", filepath.Join(c.lists, "aria2.txt")})
}

// rows judges the targets on assetd with the request limit lifted: the
// store's and the download path's cost, which the durable ceiling bounds.
// The shipped limit (manifests charged, 20 a second after a burst of 10)
// alone keeps a preload of 20 avatars at 0.5 s or more; its row is context.
func (r setResult) rows() []row {
	load := fmt.Sprintf("cold preload of %s (%s, %d files), wall time", r.name, mib(float64(r.total)), r.files)
	versus := func(who, name, target string, limit float64) row {
		a := median(r.times[who])
		fig := load + ", " + who + ", vs " + name
		if target == "" {
			fig = "(context) " + fig + " (the shipped request limit)"
		}
		if why, ok := r.missing[name]; ok {
			return row{fig, secs(a), why, "", target, "not available"}
		}
		x := median(r.times[name])
		met := ""
		if target != "" {
			met = yesNo(a/x <= limit)
		}
		return row{fig, secs(a), secs(x), ratio(a / x), target, met}
	}
	peak := median(r.peaks)
	ac, cc := median(r.cpu[cAssetdNL]), median(r.cpu[cCeilingFS])
	return []row{
		versus(cAssetdNL, cCeilingFS, fmt.Sprintf("≤ %.2f", durableTarget), durableTarget),
		{"(context) CPU time (user + system) of that preload, vs " + cCeilingFS, secs(ac), secs(cc), ratio(ac / cc), "", ""},
		versus(cAssetdNL, cAria2Raw, fmt.Sprintf("≤ %.1f", ariaRawTarget), ariaRawTarget),
		versus(cAssetd, cCeilingFS, "", 0),
		{"daemon peak RSS (VmHWM) during the cold preloads of " + r.name, mib(peak), "", "", "≤ 64 MiB", yesNo(peak <= peakRSSTarget)},
	}
}

// setRounds lists every round of every set, for the per-round section.
func setRounds(sets []setResult) string {
	var b strings.Builder
	for _, r := range sets {
		for _, name := range []string{cAssetdNL, cAssetd, cCeilingFS, cAria2Raw} {
			if xs, ok := r.times[name]; ok {
				fmt.Fprintf(&b, "- %s, %s: %s\n", r.name, name, series(xs, secs))
			}
		}
		for _, name := range []string{cAssetdNL, cAssetd, cCeilingFS} {
			fmt.Fprintf(&b, "- %s, %s, CPU time: %s\n", r.name, name, series(r.cpu[name], secs))
		}
		fmt.Fprintf(&b, "- %s, daemon peak RSS: %s\n", r.name, series(r.peaks, func(x float64) string { return mib(x) }))
	}
	return b.String()
}

const setNotes = `- The file sets (issue 15): 20 avatars of four 2 MiB files, and 10 avatars of two 8 MiB files, each
  set published and served by its own static server like the main origin. Each round runs a cold
  ` + "`assetd preload`" + ` of the set with the request limit lifted (the targets' row) and with the shipped
  one (context: it charges each manifest, 20 a second after a burst of 10, so 20 avatars take 0.5 s
  or more however fast the rest is), the peak RSS read after each, the ceiling with an fsync per file (the limit
  for a store that must not lose a committed file), and aria2c -j4 -x1 alone (downloads only, no
  ` + "`sha256sum -c`" + ` after it); the order rotates and the page cache's dirty pages are flushed between them.
  The CPU time is the daemon's (/proc/PID/stat, from ready to the end of the preload) plus the
  client's, against the ceiling's: on a loaded machine, where wall times follow the CPU a process gets,
  it is the steadier figure.
`
