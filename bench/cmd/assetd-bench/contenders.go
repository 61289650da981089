package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/assetd/assetd/bench"
)

// The contenders' names, as the report spells them.
const (
	cAssetd    = "assetd"
	cAssetdNL  = "assetd, no request limit"
	cAria2     = "aria2c -j4 + sha256sum -c"
	cCurl      = "curl --parallel-max 4 + sha256sum -c"
	cCeiling   = "ceiling (bare Go, 4 workers)"
	cCeilingFS = "ceiling + fsync"
)

// noLimit lifts fetch.requests_per_second to the config's maximum.
const noLimit = "requests_per_second = 10000\nburst = 10000\n"

// contender is one cold download of every item; run returns its wall time.
type contender struct {
	name string
	run  func(ctx context.Context, dir string) (time.Duration, error)
}

// memSample is the daemon's memory in one assetd round.
type memSample struct{ peak, idle int64 }

// cold holds what the cold rounds need.
type cold struct {
	o       options
	self    string
	work    string
	base    string
	ids     []string
	items   []bench.Item
	lists   string // directory of the contenders' lists
	mem     []memSample
	missing map[string]string // contender → why it did not run
}

// writeLists writes the inputs of aria2c, curl, sha256sum and the ceiling.
func (c *cold) writeLists() error {
	if err := os.MkdirAll(c.lists, 0o755); err != nil {
		return err
	}
	var aria, curl, sums strings.Builder
	for _, it := range c.items {
		fmt.Fprintf(&aria, "%s%s\n  out=%s\n", c.base, it.URLPath, it.Rel)
		fmt.Fprintf(&curl, "url = %q\noutput = %q\n", c.base+it.URLPath, it.Rel)
		fmt.Fprintf(&sums, "%s  %s\n", it.SHA256, it.Rel)
	}
	for name, s := range map[string]string{"aria2.txt": aria.String(), "curl.cfg": curl.String(), "sha256sums": sums.String()} {
		if err := os.WriteFile(filepath.Join(c.lists, name), []byte(s), 0o644); err != nil {
			return err
		}
	}
	return writeCeilingList(filepath.Join(c.lists, "ceiling.tsv"), c.base, c.items)
}

func (c *cold) contenders() []contender {
	all := []contender{
		{cAssetd, func(ctx context.Context, dir string) (time.Duration, error) { return c.assetd(ctx, dir, "", true) }},
		{cAria2, c.aria2},
		{cCurl, c.curl},
		{cCeiling, func(ctx context.Context, dir string) (time.Duration, error) { return c.ceiling(ctx, dir, false) }},
		{cAssetdNL, func(ctx context.Context, dir string) (time.Duration, error) {
			return c.assetd(ctx, dir, noLimit, false)
		}},
		{cCeilingFS, func(ctx context.Context, dir string) (time.Duration, error) { return c.ceiling(ctx, dir, true) }},
	}
	c.missing = map[string]string{}
	need := map[string][]string{cAria2: {"aria2c", "sha256sum"}, cCurl: {"curl", "sha256sum"}}
	var out []contender
	for _, k := range all {
		ok := true
		for _, tool := range need[k.name] {
			if _, err := exec.LookPath(tool); err != nil {
				c.missing[k.name] = tool + " not available"
				ok = false
			}
		}
		if ok {
			out = append(out, k)
		}
	}
	return out
}

// rounds runs every contender once a round, in an order that rotates from
// round to round, and returns each one's wall times in seconds.
func (c *cold) rounds(ctx context.Context) (map[string][]float64, error) {
	return c.roundsOf(ctx, c.contenders())
}

// roundsOf runs the contenders ks as rounds does.
func (c *cold) roundsOf(ctx context.Context, ks []contender) (map[string][]float64, error) {
	times := map[string][]float64{}
	for r := range c.o.rounds {
		for i := range ks {
			k := ks[(i+r)%len(ks)]
			dir := filepath.Join(c.work, fmt.Sprintf("round%d-%d", r+1, i))
			took, err := k.run(ctx, dir)
			if err != nil {
				return nil, fmt.Errorf("round %d, %s: %w", r+1, k.name, err)
			}
			fmt.Fprintf(os.Stderr, "round %d  %-40s %7.3f s\n", r+1, k.name, took.Seconds())
			times[k.name] = append(times[k.name], took.Seconds())
			if err := os.RemoveAll(dir); err != nil {
				return nil, err
			}
			// The next contender does not pay for this one's writeback.
			syscall.Sync()
		}
	}
	return times, nil
}

// assetd times a cold `assetd preload` of every avatar through a freshly
// started daemon with an empty store; with mem, it records the daemon's
// peak RSS then and its RSS after the idle wait.
func (c *cold) assetd(ctx context.Context, dir, fetchTOML string, mem bool) (time.Duration, error) {
	d, took, err := c.preload(ctx, dir, fetchTOML)
	if err != nil {
		return 0, err
	}
	defer d.stop()
	if !mem {
		return took, d.stop()
	}
	peak, _, err := memStatus(d.pid())
	if err != nil {
		return 0, err
	}
	select {
	case <-time.After(c.o.idle):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	_, idle, err := memStatus(d.pid())
	if err != nil {
		return 0, err
	}
	c.mem = append(c.mem, memSample{peak, idle})
	return took, d.stop()
}

// preload starts a daemon in dir, waits until it is ready and times a
// cold `assetd preload` of every avatar. The daemon is left running (the
// caller stops it) unless preload fails.
func (c *cold) preload(ctx context.Context, dir, fetchTOML string) (*daemon, time.Duration, error) {
	d, err := startDaemon(c.o.assetd, dir, daemonConfig(dir, c.base, fetchTOML))
	if err != nil {
		return nil, 0, err
	}
	if _, err := d.waitReady(ctx); err != nil {
		_ = d.stop()
		return nil, 0, err
	}
	if d.readyCPU, err = cpuTime(d.pid()); err != nil {
		_ = d.stop()
		return nil, 0, err
	}
	took, err := d.client(ctx, append([]string{"preload"}, c.ids...)...)
	if err != nil {
		_ = d.stop()
		return nil, 0, err
	}
	return d, took, nil
}

// timed runs the commands one after the other in dir and returns their
// wall time together.
func timed(ctx context.Context, dir string, cmds ...[]string) (time.Duration, error) {
	took, _, err := timedCPU(ctx, dir, cmds...)
	return took, err
}

// timedCPU is timed that also returns the commands' CPU time (user + system).
func timedCPU(ctx context.Context, dir string, cmds ...[]string) (took, cpu time.Duration, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	for _, argv := range cmds {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return 0, 0, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), err, lastLines(out))
		}
		cpu += cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	return time.Since(start), cpu, nil
}

func lastLines(out []byte) string {
	s := strings.TrimSpace(string(out))
	if len(s) > 600 {
		s = "..." + s[len(s)-600:]
	}
	return s
}

func (c *cold) aria2(ctx context.Context, dir string) (time.Duration, error) {
	return timed(ctx, dir,
		[]string{"aria2c", "-q", "-j4", "-x1", "--allow-overwrite=true", "--auto-file-renaming=false",
			"-d", dir, "-i", filepath.Join(c.lists, "aria2.txt")},
		[]string{"sha256sum", "-c", "--quiet", filepath.Join(c.lists, "sha256sums")})
}

func (c *cold) curl(ctx context.Context, dir string) (time.Duration, error) {
	return timed(ctx, dir,
		[]string{"curl", "--parallel", "--parallel-max", "4", "--fail", "-sS", "--create-dirs", "-K", filepath.Join(c.lists, "curl.cfg")},
		[]string{"sha256sum", "-c", "--quiet", filepath.Join(c.lists, "sha256sums")})
}

func (c *cold) ceiling(ctx context.Context, dir string, fsync bool) (time.Duration, error) {
	took, _, err := c.ceilingCPU(ctx, dir, fsync)
	return took, err
}

// ceilingCPU is ceiling that also returns the ceiling's CPU time.
func (c *cold) ceilingCPU(ctx context.Context, dir string, fsync bool) (took, cpu time.Duration, err error) {
	argv := []string{c.self, "ceiling", "-workers", "4", "-list", filepath.Join(c.lists, "ceiling.tsv"), "-dir", dir}
	if fsync {
		argv = append(argv, "-fsync")
	}
	return timedCPU(ctx, dir, argv)
}
