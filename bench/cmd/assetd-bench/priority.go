package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/assetd/assetd/bench"
)

// The priority scenario (issue 15 item 2): on a link of
// fetch.bytes_per_second = 20MiB, a background preload of 40 avatars of
// 4 MiB, then, 1.5 s later, an interactive load of one 8 MiB avatar.
const (
	priorityLink      = "20MiB"
	priorityBGAvatars = 40
	priorityBGSize    = 4 * bench.MiB
	priorityFGSize    = 8 * bench.MiB
	priorityDelay     = 1500 * time.Millisecond
	priorityTarget    = 1.5 // the interactive load beside the preload, as a multiple of its time alone
)

// priorityPair is one paired run: the interactive load alone, then beside
// the background preload, each on a fresh daemon with an empty store.
type priorityPair struct {
	alone, beside float64 // seconds, `assetd preload fg` exec to exit
	bgTook        float64 // seconds, the background preload, exec to exit
	bgSent        int64   // bytes the origin sent for the background blobs
	bgWant        int64   // their sizes
	bgRequests    int     // requests for them
}

// priorityResult is the scenario's runs.
type priorityResult struct {
	pairs []priorityPair
	err   string // why the scenario did not run
}

// ratio is the median over the pairs of beside / alone.
func (p priorityResult) ratio() float64 {
	xs := make([]float64, len(p.pairs))
	for i, r := range p.pairs {
		xs[i] = r.beside / r.alone
	}
	return median(xs)
}

// onceEach reports whether every pair's preload fetched each background
// byte exactly once.
func (p priorityResult) onceEach() bool {
	for _, r := range p.pairs {
		if r.bgSent != r.bgWant {
			return false
		}
	}
	return len(p.pairs) > 0
}

func (p priorityResult) rows() []row {
	fig := fmt.Sprintf("interactive load of one %s avatar %s after a background preload of %d × %s started, fetch.bytes_per_second = %s, vs the same load alone",
		mib(priorityFGSize), priorityDelay, priorityBGAvatars, mib(priorityBGSize), priorityLink)
	if p.err != "" {
		return []row{{fig, "", "", "", fmt.Sprintf("≤ %.1f", priorityTarget), "not available: " + p.err}}
	}
	var beside, alone []float64
	for _, r := range p.pairs {
		beside, alone = append(beside, r.beside), append(alone, r.alone)
	}
	x := p.ratio()
	var sent, want int64
	for _, r := range p.pairs {
		sent, want = sent+r.bgSent, want+r.bgWant
	}
	return []row{
		{fig + fmt.Sprintf(" (median of %d paired runs' ratios)", len(p.pairs)), secs(median(beside)), secs(median(alone)),
			ratio(x), fmt.Sprintf("≤ %.1f", priorityTarget), yesNo(x <= priorityTarget)},
		{"that background preload: bytes the origin sent for its blobs vs their sizes, every run", mib(float64(sent)), mib(float64(want)),
			ratio(float64(sent) / float64(want)), "every byte once", yesNo(p.onceEach())},
	}
}

func (p priorityResult) series() string {
	var b strings.Builder
	for i, r := range p.pairs {
		fmt.Fprintf(&b, "- priority pair %d: alone %s, beside the preload %s (%.2f×); the preload took %s, %d requests, %d of %d blob bytes sent\n",
			i+1, secs(r.alone), secs(r.beside), r.beside/r.alone, secs(r.bgTook), r.bgRequests, r.bgSent, r.bgWant)
	}
	return b.String()
}

// priorityScenario generates the scenario's origin under work and runs
// pairs paired runs against the binary.
func priorityScenario(ctx context.Context, bin, work string, pairs int) (priorityResult, error) {
	var res priorityResult
	dir := filepath.Join(work, "priority")
	avatars := []bench.Avatar{{ID: "fg", Files: []bench.File{{Path: "model.splat", Size: priorityFGSize}}}}
	var bgIDs []string
	for i := range priorityBGAvatars {
		id := fmt.Sprintf("bg-%02d", i)
		bgIDs = append(bgIDs, id)
		avatars = append(avatars, bench.Avatar{ID: id, Files: []bench.File{{Path: "model.splat", Size: priorityBGSize}}})
	}
	fmt.Fprintf(os.Stderr, "priority: generating %d avatars in %s\n", len(avatars), dir)
	src, site := filepath.Join(dir, "src"), filepath.Join(dir, "site")
	if err := bench.WriteSource(src, avatars, bench.Version); err != nil {
		return res, err
	}
	if err := bench.Publish(ctx, src, site); err != nil {
		return res, err
	}
	items, err := bench.Items(site, bgIDs)
	if err != nil {
		return res, err
	}
	bgBlobs := map[string]int64{}
	for _, it := range items {
		if !strings.HasSuffix(it.Rel, "/manifest") {
			bgBlobs[it.URLPath] = it.Size
		}
	}

	origin := bench.NewOrigin(site)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	srv := &http.Server{Handler: origin}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	fetchTOML := fmt.Sprintf("bytes_per_second = %q\n", priorityLink)

	run := 0
	fresh := func() (*daemon, error) {
		run++
		d := filepath.Join(dir, fmt.Sprintf("run-%d", run))
		dm, err := startDaemon(bin, d, daemonConfig(d, base, fetchTOML))
		if err != nil {
			return nil, err
		}
		if _, err := dm.waitReady(ctx); err != nil {
			_ = dm.stop()
			return nil, err
		}
		return dm, nil
	}
	for i := range pairs {
		var p priorityPair
		// alone
		d, err := fresh()
		if err != nil {
			return res, err
		}
		took, err := d.client(ctx, "preload", "fg")
		if serr := d.stop(); err == nil {
			err = serr
		}
		if err != nil {
			return res, err
		}
		p.alone = took.Seconds()

		// beside the background preload
		if d, err = fresh(); err != nil {
			return res, err
		}
		origin.Reset()
		bg := exec.CommandContext(ctx, bin, append([]string{"preload", "--socket", d.sock, "--background"}, bgIDs...)...)
		bgLog, err := os.Create(filepath.Join(d.dir, "background.log"))
		if err != nil {
			_ = d.stop()
			return res, err
		}
		bg.Stdout, bg.Stderr = bgLog, bgLog
		bgStart := time.Now()
		if err := bg.Start(); err != nil {
			bgLog.Close()
			_ = d.stop()
			return res, err
		}
		bgDone := make(chan error, 1)
		go func() { bgDone <- bg.Wait() }()
		select {
		case <-time.After(priorityDelay):
		case err := <-bgDone:
			bgLog.Close()
			_ = d.stop()
			return res, fmt.Errorf("the background preload ended within %s (%v); see %s", priorityDelay, err, bgLog.Name())
		}
		took, ferr := d.client(ctx, "preload", "fg")
		berr := <-bgDone
		p.bgTook = time.Since(bgStart).Seconds()
		bgLog.Close()
		serr := d.stop()
		switch {
		case ferr != nil:
			return res, ferr
		case berr != nil:
			return res, fmt.Errorf("background preload: %w; see %s", berr, bgLog.Name())
		case serr != nil:
			return res, serr
		}
		p.beside = took.Seconds()
		sent, reqs := origin.Sent()
		for path, size := range bgBlobs {
			p.bgSent += sent[path]
			p.bgWant += size
			p.bgRequests += reqs[path]
		}
		fmt.Fprintf(os.Stderr, "priority pair %d: alone %s, beside %s\n", i+1, secs(p.alone), secs(p.beside))
		res.pairs = append(res.pairs, p)
	}
	return res, nil
}

// priorityMain runs only the priority scenario and prints its rows:
// `assetd-bench priority -assetd bin/assetd`.
func priorityMain(args []string) int {
	fs := flag.NewFlagSet("priority", flag.ExitOnError)
	bin := fs.String("assetd", "bin/assetd", "the assetd binary under test (make build)")
	pairs := fs.Int("pairs", 3, "paired runs")
	keep := fs.Bool("keep", false, "keep the working directory (the daemons' logs)")
	_ = fs.Parse(args)
	work, err := os.MkdirTemp("", "assetd-bench-priority-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "assetd-bench priority:", err)
		return 1
	}
	if *keep {
		fmt.Fprintln(os.Stderr, "priority: keeping", work)
	} else {
		defer os.RemoveAll(work)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "assetd-bench priority:", err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := priorityScenario(ctx, abs, work, *pairs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "assetd-bench priority:", err)
		return 1
	}
	fmt.Printf("machine load average %s\n\n", loadAverage())
	fmt.Print(table(res.rows()))
	fmt.Print(res.series())
	return 0
}
