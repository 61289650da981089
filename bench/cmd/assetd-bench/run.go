package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/assetd/assetd/bench"
	"github.com/assetd/assetd/internal/config"
)

// Targets of the cached daemon.
const (
	cachedGetTarget = 0.85  // cached GET throughput, as a fraction of the bare handler's
	idleCPUTarget   = 0.001 // CPU while idle, as a fraction of one core
)

// results is everything the report shows.
type results struct {
	o           options
	version     string
	binSize     int64
	total       int64 // bytes of a cold load: manifests and assets
	files       int
	times       map[string][]float64
	missing     map[string]string
	mem         []memSample
	sets        []setResult
	cached      cachedResult
	priority    priorityResult
	starts      []float64
	emptyStarts []float64
	scale       *scaleResult
	loadBefore  string
	loadAfter   string
	took        time.Duration
}

func run(ctx context.Context, o options) error {
	start := time.Now()
	var err error
	if o.assetd, err = filepath.Abs(o.assetd); err != nil {
		return err
	}
	fi, err := os.Stat(o.assetd)
	if err != nil {
		return fmt.Errorf("%w (make build writes bin/assetd)", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	work := o.work
	if work == "" {
		if work, err = os.MkdirTemp("", "assetd-bench-"); err != nil {
			return err
		}
		if !o.keep {
			defer os.RemoveAll(work)
		}
	}
	res := &results{o: o, binSize: fi.Size(), loadBefore: loadAverage()}
	if o.only == "sets" {
		if res.sets, err = runSets(ctx, o, self, work); err != nil {
			return err
		}
		var rows []row
		for _, r := range res.sets {
			rows = append(rows, r.rows()...)
		}
		fmt.Printf("load average %s at the start, %s at the end\n\n%s\n%s", res.loadBefore, loadAverage(), table(rows), setRounds(res.sets))
		return nil
	}
	out, err := exec.CommandContext(ctx, o.assetd, "version").Output()
	if err != nil {
		return fmt.Errorf("assetd version: %w", err)
	}
	res.version = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])

	fmt.Fprintf(os.Stderr, "generating %d avatars in %s\n", o.avatars, work)
	avatars := bench.Avatars(o.avatars)
	src, site := filepath.Join(work, "src"), filepath.Join(work, "site")
	if err := bench.WriteSource(src, avatars, bench.Version); err != nil {
		return err
	}
	if err := bench.Publish(ctx, src, site); err != nil {
		return err
	}
	ids := bench.IDs(avatars)
	items, err := bench.Items(site, ids)
	if err != nil {
		return err
	}
	res.total, res.files = bench.TotalSize(items), len(items)

	origin := bench.NewOrigin(site)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: origin}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	c := &cold{o: o, self: self, work: work, base: "http://" + ln.Addr().String(), ids: ids, items: items, lists: filepath.Join(work, "lists")}
	if err := c.writeLists(); err != nil {
		return err
	}
	if o.only != "" {
		return c.only(ctx, res)
	}
	if res.times, err = c.rounds(ctx); err != nil {
		return err
	}
	res.missing, res.mem = c.missing, c.mem
	if res.sets, err = runSets(ctx, o, self, work); err != nil {
		return err
	}
	if res.cached, err = c.measureCached(ctx, origin, src, site, avatars); err != nil {
		return err
	}

	if res.priority, err = priorityScenario(ctx, o.assetd, work, 3); err != nil {
		res.priority.err = err.Error()
	}

	fmt.Fprintf(os.Stderr, "indexing %d avatars\n", o.indexed)
	tmp := work
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if tmp, err = os.MkdirTemp("/dev/shm", "assetd-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
	}
	idx := filepath.Join(work, "indexed")
	if err := buildIndex(ctx, tmp, idx, o.indexed); err != nil {
		return err
	}
	if res.starts, err = startTimes(ctx, o.assetd, idx, c.base, o.indexed, 3); err != nil {
		return err
	}
	if res.emptyStarts, err = startTimes(ctx, o.assetd, filepath.Join(work, "empty"), c.base, 0, 3); err != nil {
		return err
	}
	if o.scale > 0 {
		fmt.Fprintf(os.Stderr, "indexing %d avatars for the scale figures\n", o.scale)
		if res.scale, err = measureScale(ctx, o.assetd, work, tmp, c.base, o.scale); err != nil {
			return err
		}
	}
	res.loadAfter, res.took = loadAverage(), time.Since(start)

	doc := res.markdown()
	if o.gobench != "" {
		data, err := os.ReadFile(o.gobench)
		if err != nil {
			return err
		}
		doc += goBenchSection(data)
	}
	fmt.Print(doc)
	if o.out != "" {
		return os.WriteFile(o.out, []byte(doc), 0o644)
	}
	return nil
}

func (r *results) rows() []row {
	med := func(name string) float64 { return median(r.times[name]) }
	a, nl := med(cAssetd), med(cAssetdNL)
	load := fmt.Sprintf("cold preload of %d avatars (%s, %d files)", r.o.avatars, mib(float64(r.total)), r.files)
	var rows []row
	versus := func(figure, name string, asset float64, target string, limit float64) {
		if why, ok := r.missing[name]; ok {
			rows = append(rows, row{figure, secs(asset), why, "", target, "not available"})
			return
		}
		x := med(name)
		met := ""
		if target != "" {
			met = yesNo(asset/x <= limit)
		}
		rows = append(rows, row{figure, secs(asset), secs(x), ratio(asset / x), target, met})
	}
	versus(load+", wall time, vs "+cAria2, cAria2, a, "≤ 1.0", 1.0)
	versus(load+", wall time, vs "+cCurl, cCurl, a, "≤ 0.8", 0.8)
	ceil := med(cCeiling)
	rows = append(rows, row{"cold preload throughput vs " + cCeiling, mbps(r.total, a), mbps(r.total, ceil),
		ratio(ceil / a), "≥ 0.8", yesNo(ceil/a >= 0.8)})
	versus("(context) "+cAssetdNL+", wall time, vs "+cAria2, cAria2, nl, "", 0)
	versus("(context) "+cAssetdNL+", wall time, vs "+cCurl, cCurl, nl, "", 0)
	rows = append(rows, row{"(context) " + cAssetdNL + ", throughput vs the ceiling", mbps(r.total, nl), mbps(r.total, ceil), ratio(ceil / nl), "", ""})
	cfs := med(cCeilingFS)
	rows = append(rows,
		row{"(context) " + cAssetdNL + ", wall time, vs " + cCeilingFS, secs(nl), secs(cfs), ratio(nl / cfs), "", ""},
		row{"(context) " + cCeilingFS + " vs " + cCeiling + ", wall time", "", secs(cfs) + " vs " + secs(ceil), ratio(cfs / ceil), "", ""})
	for _, s := range r.sets {
		rows = append(rows, s.rows()...)
	}

	rows = append(rows, r.memRows()...)
	rows = append(rows, r.socketRows()...)
	rows = append(rows,
		row{"`assetd get ID` command, exec to exit", ms(median(r.cached.getCLI)), "", "", "", ""},
		row{fmt.Sprintf("daemon CPU idle over %s, %d avatars cached (/proc/PID/stat utime+stime)", r.o.idleCPU, r.o.avatars),
			fmt.Sprintf("%.3f%% of a core", 100*r.cached.idleCPU), "", "", fmt.Sprintf("< %.1f%%", 100*idleCPUTarget), yesNo(r.cached.idleCPU < idleCPUTarget)},
		row{fmt.Sprintf("`assetd serve` start to a ready socket, %d avatars indexed", r.o.indexed), ms(median(r.starts)), "", "", "≤ 300 ms", yesNo(median(r.starts) <= 0.3)},
		row{"(context) `assetd serve` start to a ready socket, empty store", ms(median(r.emptyStarts)), "", "", "", ""})
	rows = append(rows, r.scale.rows()...)

	f := r.cached.refresh
	rows = append(rows,
		row{"refresh, 1 of 5 files changed (" + f.changed + "): bytes downloaded vs the manifest + that file", fmt.Sprintf("%d B", f.got), fmt.Sprintf("%d B", f.want),
			ratio(float64(f.got) / float64(f.want)), "that file and the manifest only", yesNo(f.ok)},
		row{"refresh, 1 of 5 files changed: `assetd preload` wall time", ms(f.took), "", "", "", ""},
		row{"binary size (bin/assetd, make build: -trimpath -s -w)", mib(float64(r.binSize)), "", "", "", ""})
	rows = append(rows, r.priority.rows()...)
	return rows
}

func (r *results) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Performance\n\n")
	fmt.Fprintf(&b, "Measured by `make bench` (bench/cmd/assetd-bench) on %s: %s.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), r.version)
	fmt.Fprintf(&b, "Machine: %s, %d cores (load average %s at the start, %s at the end; the machine is shared,\n"+
		"so compare the ratios, measured interleaved in the same run, rather than absolute times). The run took %s.\n\n",
		cpuModel(), runtime.NumCPU(), r.loadBefore, r.loadAfter, r.took.Round(time.Second))
	fmt.Fprintf(&b, "Medians of %d rounds; ratios are assetd / contender for times and latencies and for throughput of\n"+
		"the socket, and ceiling time / assetd time for the download throughput.\n\n", r.o.rounds)
	b.WriteString(table(r.rows()))
	b.WriteString(r.limitNote())
	b.WriteString("\n## Every round\n\n")
	for _, name := range []string{cAssetd, cAssetdNL, cAria2, cCurl, cCeiling, cCeilingFS} {
		if xs, ok := r.times[name]; ok {
			fmt.Fprintf(&b, "- %s: %s\n", name, series(xs, secs))
		}
	}
	b.WriteString(setRounds(r.sets))
	for i, m := range r.mem {
		fmt.Fprintf(&b, "- daemon memory, round %d: peak %s, idle %s\n", i+1, mib(float64(m.peak)), mib(float64(m.idle)))
	}
	b.WriteString(r.socketSeries())
	fmt.Fprintf(&b, "- serve start to ready, %d indexed: %s; empty: %s\n", r.o.indexed, series(r.starts, ms), series(r.emptyStarts, ms))
	if sc := r.scale; sc != nil {
		fmt.Fprintf(&b, "- scale, %d avatars: starts %s; listings %s\n", sc.n, series(sc.starts, ms), series(sc.lists, ms))
	}
	fmt.Fprintf(&b, "- refresh: the origin answered %s\n", strings.Join(r.cached.refresh.requested, ", "))
	b.WriteString(r.priority.series())
	b.WriteString(methodNotes)
	return b.String()
}

// limitNote compares the cold preload under the shipped request limit with
// the same preload with the limit lifted. The limiter charges manifests,
// retries and redirects, not each blob's first request, so the two should
// be alike: a gap here means the limit holds downloads back again.
func (r *results) limitNote() string {
	def := config.Default().Fetch
	a, nl := median(r.times[cAssetd]), median(r.times[cAssetdNL])
	return fmt.Sprintf("\nUnder the shipped fetch.requests_per_second = %g and burst = %d the cold preload of %d files\n"+
		"takes %s; with both lifted, %s. The limiter charges the %d manifest requests, retries and redirects,\n"+
		"not each blob's first request (blob downloads are bounded by fetch.concurrency).\n"+
		"Profiles of the in-process paths: `go test -run '^$' -bench 'ColdLoad|SocketGet' -cpuprofile cpu.out ./bench/`.\n",
		def.RequestsPerSecond, def.Burst, r.files, secs(a), secs(nl), r.o.avatars)
}

const methodNotes = `
## How it is measured

- The origin: 20 avatars of five files (5 MiB, 1.5 MiB, 768 KiB, 640 KiB, 2 KiB; ChaCha8 bytes, the
  same on every run), published and signed with internal/publish, served by one static file server
  on 127.0.0.1 (http.FileServer: keep-alive, Range, sendfile, an ETag) for every contender. The
  files are in the page cache: the figures are of the clients, not of the origin's disk.
- assetd: a fresh ` + "`assetd serve`" + ` with an empty store and the shipped configuration (only the
  origin, the trusted key, the store directory and the socket are set), ready before the clock starts;
  the time is that of ` + "`assetd preload`" + ` of all 20, from exec to exit: 20 manifests, verified
  signatures, 100 blobs hashed, fsynced and committed to the store. Its peak RSS is VmHWM after the
  preload, its idle RSS VmRSS after the wait. "no request limit" is the same run with
  fetch.requests_per_second and burst at their maximum, 10000.
- aria2c -j4 and curl --parallel --parallel-max 4 fetch the same manifests and blobs into a directory,
  then ` + "`sha256sum -c`" + ` checks them; the time covers both. The ceiling is a Go program of 4 workers
  that downloads, hashes and writes each file, and nothing else (no fsync; "ceiling + fsync" adds an
  fsync per file). Between contenders the output is deleted and sync(2) flushes the page cache's
  dirty pages, so that no contender pays for another's writeback; the order rotates every round.
` + setNotes + `- Idle CPU: with every avatar cached and nothing asked, the daemon's utime + stime
  (/proc/PID/stat) over -idle-cpu (30 s), as a share of one core.
- The socket: the daemon's answer to GET /v1/avatars/{id} for each avatar is captured and a bare
  net/http handler on another Unix socket answers the same bytes; each trial sends the same number
  of requests (after a tenth as warm-up) from 32 goroutines over 32 keep-alive connections.
  The CPU time per request is each server process's utime + stime (/proc/PID/stat, 10 ms
  ticks) over the timed requests, divided by their number: a cost the machine's other
  load moves less than it moves throughput. ` + "`assetd-bench -only socket`" + ` runs these trials alone.
- Start to ready: a store of 10,000 avatars of five files written through internal/store, then
  ` + "`assetd serve`" + ` is started on it and /v1/health polled every millisecond.
- Priority (` + "`assetd-bench priority`" + ` runs it alone): 40 avatars of one 4 MiB file and one of
  an 8 MiB file on the same static server; fetch.bytes_per_second = "20MiB", the rest shipped. Each
  of 3 paired runs starts a fresh daemon and times ` + "`assetd preload fg`" + ` alone, then another
  fresh daemon, starts ` + "`assetd preload --background`" + ` of the 40, and 1.5 s later times the same
  ` + "`assetd preload fg`" + `; the ratio is the median of the pairs' ratios. The preload must still
  complete, the origin having sent each of its blobs' bytes once (its count per path).
- Scale (-scale, 100,000): avatars of four files each, three their own and one of 64 shared,
  written through internal/store in a tmpfs and copied to disk twice; the daemon has no trusted keys
  (the figures are the index's, not a signature check per avatar). On the first copy: three starts,
  then on the last daemon three listings (GET /v1/avatars read to the end and its avatars counted),
  RssAnon and VmHWM from /proc/PID/status, and, the daemon idle, ` + "`assetd gc --keep 1000`" + ` timed until its
  CPU time has not grown for a second (the removal of its files, which the daemon does in the
  background after it answers, and its blob watcher's rescan after the removals included). On
  the second: a gc is started, the daemon SIGKILLed once /v1/cache/stats counts the 1000 kept (the
  index change committed, the files being removed), and the next start timed to ready. On a third,
  the contender of the gc: a bare program (bench/cmd/assetd-bench/scalefs.go) unlinks the files the
  gc removes, in inode order, with 8 workers, and nothing else: the floor of any store that keeps a
  blob as a file. What a removal costs depends on the file system: on an ext4 without a journal,
  mounted discard, each unlink trims its freed block synchronously (a journal batches the trims at
  its commits), and a small journal fills and waits for its checkpoints. So, when the bench runs as
  root, the gc and its floor are measured again on copies in a fresh 64 GiB ext4 (a sparse image)
  made by mkfs.ext4 with its defaults but the inode count (a 512 MiB journal; mounted without
  discard, as a device's root is) in a loop device on the same disk.
- The refresh: one file of one cached avatar changes, the tree is republished, ` + "`assetd preload`" + `
  of it runs, and the static server's count of bytes sent per path is read.
`

func goBenchSection(data []byte) string {
	var b strings.Builder
	b.WriteString("\n## Go benchmarks (go test -run '^$' -bench . -benchmem ./...)\n\n```text\n")
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "pkg:") || strings.HasPrefix(line, "FAIL") {
			b.WriteString(line)
		}
	}
	b.WriteString("```\n")
	return b.String()
}
