package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/assetd/assetd/client"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// Issue 15's scale targets: a store of 100,000 avatars on one device.
const (
	scaleStartTarget     = 1.0      // s, start to /v1/health
	scaleAnonTarget      = 64 << 20 // RssAnon with every avatar indexed
	scaleListTarget      = 1.0      // s, GET /v1/avatars of all
	scaleGCTarget        = 5.0      // s, gc --keep 1000 until the daemon is idle
	scaleReconcileTarget = 2.0      // s, start to ready after a SIGKILL mid-gc
	scaleKeep            = 1000
	scaleOwnBlobs        = 3  // each avatar's own files
	scalePool            = 64 // files shared among avatars, one each
)

// scaleResult is the 100,000-avatar figures.
type scaleResult struct {
	n, blobs    int
	starts      []float64
	anon, hwm   int64 // RssAnon and VmHWM once ready and listed
	lists       []float64
	listBytes   int
	gcs         []gcTrial // on the work directory's file system, then on a fresh ext4 if one could be made
	noExt4      string    // why not
	reconcile   float64
	reconcileOK string
}

// scaleMain is `assetd-bench scale`: the scale figures alone, printed
// as the report's rows, for work on them without the whole bench.
func scaleMain(args []string) int {
	fs := flag.NewFlagSet("scale", flag.ExitOnError)
	bin := fs.String("assetd", "bin/assetd", "the assetd binary under test")
	n := fs.Int("n", 100000, "avatars")
	fs.Parse(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := func() error {
		abs, err := filepath.Abs(*bin)
		if err != nil {
			return err
		}
		work, err := os.MkdirTemp("", "assetd-bench-scale-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		tmp := work
		if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
			if tmp, err = os.MkdirTemp("/dev/shm", "assetd-bench-"); err != nil {
				return err
			}
			defer os.RemoveAll(tmp)
		}
		load := loadAverage()
		res, err := measureScale(ctx, abs, work, tmp, "http://127.0.0.1:9", *n)
		if err != nil {
			return err
		}
		fmt.Printf("load average %s before, %s after\n\n%s", load, loadAverage(), table(res.rows()))
		return nil
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "assetd-bench scale:", err)
		return 1
	}
	return 0
}

// scaleBlob is the content of blob i: tiny, distinct.
func scaleBlob(i int) []byte { return fmt.Appendf(nil, "scale blob %d\n", i) }

// buildScale writes in tmp (a tmpfs: fsync is cheap) a store of n avatars,
// each with scaleOwnBlobs files of its own and one of scalePool shared
// ones, through internal/store as loads leave it (Ingest, Commit, Put),
// then copies it to each of dsts. gone is the digests of the files a gc
// keeping the scaleKeep most recently used removes.
func buildScale(ctx context.Context, tmp string, dsts []string, n int) (blobs int, gone []string, err error) {
	dir := filepath.Join(tmp, "state")
	st, err := store.Open(dir, store.Options{})
	if err != nil {
		return 0, nil, err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	blobs = n*scaleOwnBlobs + scalePool
	digests := make([]string, blobs)
	g, gctx := errgroup.WithContext(ctx)
	const workers = 8
	for w := range workers {
		g.Go(func() error {
			for i := w; i < blobs; i += workers {
				data := scaleBlob(i)
				sum := sha256.Sum256(data)
				digests[i] = hex.EncodeToString(sum[:])
				if err := ingest(gctx, st, digests[i], data); err != nil {
					return fmt.Errorf("blob %d: %w", i, err)
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return 0, nil, err
	}
	now := time.Now()
	for i := range n {
		id := fmt.Sprintf("scale-%06d", i)
		m := &manifest.Manifest{Schema: 1, AvatarID: id, Version: "2026-12-01.1"}
		for k, p := range []string{"model.splat", "texture.bin", "anim/idle.bin"} {
			j := i*scaleOwnBlobs + k
			m.Assets = append(m.Assets, manifest.Asset{Path: p, Size: int64(len(scaleBlob(j))), SHA256: digests[j]})
		}
		j := n*scaleOwnBlobs + i%scalePool
		m.Assets = append(m.Assets, manifest.Asset{Path: "shared/rig.bin", Size: int64(len(scaleBlob(j))), SHA256: digests[j]})
		raw, err := json.Marshal(m)
		if err != nil {
			return 0, nil, err
		}
		// Last uses a second apart: gc keeps the newest scaleKeep.
		at := now.Add(time.Duration(i-n) * time.Second)
		if err := st.Put(&store.Avatar{ID: id, Version: m.Version, Manifest: m, RawManifest: raw,
			ManifestURL: "http://127.0.0.1:9/v1/avatars/" + id + "/manifest",
			Source:      "origin", State: store.StateReady, FetchedAt: at, LastUsed: at}); err != nil {
			return 0, nil, err
		}
		if i%20000 == 19999 {
			fmt.Fprintf(os.Stderr, "  %d avatars indexed\n", i+1)
		}
	}
	if err := st.Close(); err != nil {
		return 0, nil, err
	}
	for _, dst := range dsts {
		if err := os.MkdirAll(dst, 0o755); err != nil {
			return 0, nil, err
		}
		if out, err := exec.CommandContext(ctx, "cp", "-a", dir, dst).CombinedOutput(); err != nil {
			return 0, nil, fmt.Errorf("cp: %w: %s", err, out)
		}
	}
	// The copies' writeback must not slow the daemon's unlinks (gc).
	syscall.Sync()
	if n > scaleKeep {
		gone = digests[:(n-scaleKeep)*scaleOwnBlobs] // the older avatars' own files
	}
	return blobs, gone, os.RemoveAll(dir)
}

func ingest(ctx context.Context, st *store.Store, digest string, data []byte) error {
	w, err := st.Ingest(ctx, digest, int64(len(data)))
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// scaleConfig is daemonConfig without trusted keys: the figures are the
// index's, not 100,000 signature checks (docs/performance.md says so).
func scaleConfig(dir, originURL string) string {
	return fmt.Sprintf("[origin]\nurl = %q\napp_id = \"bench\"\n\n[store]\ndir = %q\n\n[api]\nsocket = %q\n",
		originURL, filepath.Join(dir, "state"), filepath.Join(dir, "assetd.sock"))
}

// measureScale builds the store once into copies: a runs the starts, the
// memory, the listings and the gc; b is killed in the middle of a gc and
// started again (the reconcile); floor's files the gc would remove are
// removed by a bare program. If a fresh ext4 can be made, the gc and its
// floor are measured there too, on copies of their own.
func measureScale(ctx context.Context, bin, work, tmp, originURL string, n int) (*scaleResult, error) {
	res := &scaleResult{n: n}
	a, b, floor := filepath.Join(work, "scale-a"), filepath.Join(work, "scale-b"), filepath.Join(work, "scale-floor")
	dsts := []string{a, b, floor}
	ext4, ext4Desc, unmount, err := ext4Image(ctx, work)
	if err != nil {
		res.noExt4 = err.Error()
		fmt.Fprintf(os.Stderr, "no gc on a fresh ext4: %v\n", err)
	} else {
		defer unmount()
		dsts = append(dsts, filepath.Join(ext4, "scale-a"), filepath.Join(ext4, "scale-floor"))
	}
	start := time.Now()
	var gone []string
	if res.blobs, gone, err = buildScale(ctx, tmp, dsts, n); err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "built %d avatars, %d blobs in %s\n", n, res.blobs, time.Since(start).Round(time.Second))
	cfg := scaleConfig(a, originURL)
	for r := range 3 {
		d, err := startDaemon(bin, a, cfg)
		if err != nil {
			return nil, err
		}
		took, err := d.waitReady(ctx)
		if err == nil && r == 0 {
			err = checkEntries(ctx, d, n)
		}
		if err != nil {
			d.stop()
			return nil, err
		}
		res.starts = append(res.starts, took.Seconds())
		fmt.Fprintf(os.Stderr, "start with %d indexed  %7.1f ms\n", n, took.Seconds()*1000)
		if r < 2 {
			if err := d.stop(); err != nil {
				return nil, err
			}
			continue
		}
		if err := res.listAndGC(ctx, d, a); err != nil {
			d.stop()
			return nil, err
		}
		if err := d.stop(); err != nil {
			return nil, err
		}
	}
	if err := res.crashMidGC(ctx, bin, b, originURL); err != nil {
		return nil, err
	}
	if res.gcs[0].floor, err = floorOf(ctx, floor, gone); err != nil {
		return nil, err
	}
	if len(dsts) > 3 {
		t, err := gcOnce(ctx, bin, dsts[3], originURL)
		if err != nil {
			return nil, err
		}
		if t.floor, err = floorOf(ctx, dsts[4], gone); err != nil {
			return nil, err
		}
		t.fs = ext4Desc + ", in a loop device: " + t.fs
		res.gcs = append(res.gcs, t)
	}
	return res, nil
}

// gcOnce starts a daemon on dir and measures a gc there.
func gcOnce(ctx context.Context, bin, dir, originURL string) (gcTrial, error) {
	d, err := startDaemon(bin, dir, scaleConfig(dir, originURL))
	if err != nil {
		return gcTrial{}, err
	}
	defer d.stop()
	if _, err := d.waitReady(ctx); err != nil {
		return gcTrial{}, err
	}
	return gcUntilIdle(ctx, d, dir)
}

// floorOf is bareRemoval of gone in dir's store, and the figure printed.
func floorOf(ctx context.Context, dir string, gone []string) (float64, error) {
	took, err := bareRemoval(ctx, filepath.Join(dir, "state", "blobs", "sha256"), gone)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(os.Stderr, "bare removal of %d files  %7.1f ms (%s)\n", len(gone), took.Seconds()*1000, describeFS(dir))
	return took.Seconds(), nil
}

// listAndGC measures, on a ready daemon, the listing (three times), the
// memory, then `assetd gc --keep 1000` until the daemon is idle again.
func (res *scaleResult) listAndGC(ctx context.Context, d *daemon, dir string) error {
	c := client.New(d.sock)
	defer c.CloseIdleConnections()
	for range 3 {
		start := time.Now()
		resp, err := c.Do(ctx, http.MethodGet, "/v1/avatars", nil, nil)
		if err != nil {
			return err
		}
		n, count, err := countAvatars(resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if err != nil {
			return fmt.Errorf("GET /v1/avatars: %w", err)
		}
		if count != res.n {
			return fmt.Errorf("GET /v1/avatars listed %d avatars, want %d", count, res.n)
		}
		res.lists, res.listBytes = append(res.lists, took.Seconds()), n
		fmt.Fprintf(os.Stderr, "list of %d (%d B)  %7.1f ms\n", count, n, took.Seconds()*1000)
	}
	var err error
	if res.anon, res.hwm, err = anonMem(d.pid()); err != nil {
		return err
	}
	t, err := gcUntilIdle(ctx, d, dir)
	res.gcs = append(res.gcs, t)
	return err
}

// gcUntilIdle runs `assetd gc --keep scaleKeep` on a ready daemon on dir
// once it is idle (what its start left running, the check of the blobs'
// sizes, ended) and times it until the daemon's CPU time stops growing.
func gcUntilIdle(ctx context.Context, d *daemon, dir string) (gcTrial, error) {
	t := gcTrial{fs: describeFS(dir)}
	if _, err := waitIdle(ctx, d.pid(), time.Second); err != nil {
		return t, err
	}
	start := time.Now()
	cmd, err := d.client(ctx, "gc", "--keep", strconv.Itoa(scaleKeep))
	if err != nil {
		return t, err
	}
	idle, err := waitIdle(ctx, d.pid(), time.Second)
	if err != nil {
		return t, err
	}
	t.command, t.gc = cmd.Seconds(), max(idle.Sub(start), cmd).Seconds()
	fmt.Fprintf(os.Stderr, "gc --keep %d  %7.1f ms (command %.1f ms; %s)\n", scaleKeep, t.gc*1000, t.command*1000, t.fs)
	return t, checkEntries(ctx, d, scaleKeep)
}

// crashMidGC starts a daemon on dir, starts `assetd gc`, kills the daemon
// with SIGKILL once the gc's index change is committed (the stats count
// scaleKeep avatars) while it removes the files, and times the next start
// to ready: Open's reconcile, which removes the files no record holds.
func (res *scaleResult) crashMidGC(ctx context.Context, bin, dir, originURL string) error {
	cfg := scaleConfig(dir, originURL)
	d, err := startDaemon(bin, dir, cfg)
	if err != nil {
		return err
	}
	if _, err := d.waitReady(ctx); err != nil {
		d.stop()
		return err
	}
	gc := exec.CommandContext(ctx, bin, "gc", "--socket", d.sock, "--keep", strconv.Itoa(scaleKeep))
	if err := gc.Start(); err != nil {
		d.stop()
		return err
	}
	gcDone := make(chan error, 1)
	go func() { gcDone <- gc.Wait() }()
	c := client.New(d.sock)
	when := "before the gc's answer"
	for polling := true; polling; {
		select {
		case <-gcDone:
			when, polling = "after the gc's answer (it finished first)", false
			gcDone <- nil
		case <-ctx.Done():
			polling = false
		case <-time.After(5 * time.Millisecond):
			pctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := c.Stats(pctx)
			cancel()
			polling = err != nil || st.TotalEntries != scaleKeep
		}
	}
	c.CloseIdleConnections()
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.exited
	<-gcDone
	if err := ctx.Err(); err != nil {
		return err
	}
	d, err = startDaemon(bin, dir, cfg)
	if err != nil {
		return err
	}
	took, err := d.waitReady(ctx)
	if err != nil {
		d.stop()
		return err
	}
	res.reconcile = took.Seconds()
	c = client.New(d.sock)
	st, err := c.Stats(ctx)
	c.CloseIdleConnections()
	if err != nil {
		d.stop()
		return err
	}
	res.reconcileOK = fmt.Sprintf("killed %s; %d avatars, %d damaged after", when, st.TotalEntries, st.Damaged)
	fmt.Fprintf(os.Stderr, "start after SIGKILL mid-gc  %7.1f ms (%s)\n", took.Seconds()*1000, res.reconcileOK)
	if st.Damaged != 0 || st.TotalEntries != scaleKeep {
		d.stop()
		return fmt.Errorf("after a crash mid-gc: %s, want %d and none damaged", res.reconcileOK, scaleKeep)
	}
	return d.stop()
}

// countAvatars reads a listing and counts its avatars.
func countAvatars(r io.Reader) (n, count int, err error) {
	key := []byte(`"avatarId":`)
	buf := make([]byte, 64<<10)
	carry := 0 // bytes kept from the last read: a key may straddle reads
	for {
		m, rerr := r.Read(buf[carry:])
		n += m
		chunk := buf[:carry+m]
		count += bytes.Count(chunk, key)
		// Fewer bytes than a key: none counted already lies wholly in them.
		carry = copy(buf, chunk[max(len(chunk)-len(key)+1, 0):])
		if rerr == io.EOF {
			return n, count, nil
		}
		if rerr != nil {
			return n, count, rerr
		}
	}
}

// anonMem reads RssAnon and VmHWM of pid, in bytes.
func anonMem(pid int) (anon, hwm int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.Lines(string(data)) {
		k, v, _ := strings.Cut(line, ":")
		kb, perr := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch {
		case k != "RssAnon" && k != "VmHWM":
			continue
		case perr != nil:
			return 0, 0, fmt.Errorf("/proc/%d/status: %s: %w", pid, k, perr)
		case k == "RssAnon":
			anon = kb << 10
		default:
			hwm = kb << 10
		}
	}
	if anon == 0 || hwm == 0 {
		return 0, 0, fmt.Errorf("/proc/%d/status: no RssAnon/VmHWM", pid)
	}
	return anon, hwm, nil
}

// waitIdle polls pid's CPU time until it has not grown for quiet, and
// returns when it last grew: the end of the work a command set off in the
// daemon (a gc's removals, the blob watcher's rescan after them).
func waitIdle(ctx context.Context, pid int, quiet time.Duration) (time.Time, error) {
	last, err := cpuTime(pid)
	if err != nil {
		return time.Time{}, err
	}
	changed := time.Now()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Since(changed) < quiet {
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		cur, err := cpuTime(pid)
		if err != nil {
			return time.Time{}, err
		}
		if cur != last {
			last, changed = cur, time.Now()
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("the daemon was still busy after 2 minutes")
		}
	}
	return changed, nil
}

func (res *scaleResult) rows() []row {
	if res == nil {
		return nil
	}
	n := fmt.Sprintf("%d avatars (%d blobs)", res.n, res.blobs)
	start, list := median(res.starts), median(res.lists)
	rows := []row{
		{"`assetd serve` start to /v1/health, " + n + " indexed", ms(start), "", "", "≤ 1 s", yesNo(start <= scaleStartTarget)},
		{"daemon anonymous memory (RssAnon) with " + n + " indexed, after the listings; VmHWM (counts bbolt's mapped index) " + mib(float64(res.hwm)),
			mib(float64(res.anon)), "", "", "≤ 64 MiB", yesNo(res.anon <= scaleAnonTarget)},
		{fmt.Sprintf("`GET /v1/avatars`, all %d listed, streamed (%s)", res.n, mib(float64(res.listBytes))), ms(list), "", "", "≤ 1 s", yesNo(list <= scaleListTarget)},
	}
	for i, t := range res.gcs {
		on := t.fs
		if i == 0 {
			on = "this machine's file system, " + t.fs
		}
		rows = append(rows, row{fmt.Sprintf("`assetd gc --keep %d` of %d, until the daemon is idle (the removal of its files after the answer, in the background, and its watcher's rescan included), on %s; the command alone %s; contender: a bare program's unlink of the same %d files (inode order, 8 workers)",
			scaleKeep, res.n, on, ms(t.command), res.n*scaleOwnBlobs-scaleKeep*scaleOwnBlobs),
			ms(t.gc), ms(t.floor), ratio(t.gc / t.floor), "≤ 5 s", yesNo(t.gc <= scaleGCTarget)})
		if i == 0 {
			rows = append(rows, row{"`assetd serve` start to ready after a SIGKILL in the middle of that gc, its index change committed, its files being removed (reconcile; " + res.reconcileOK + ")",
				ms(res.reconcile), "", "", "≤ 2 s", yesNo(res.reconcile <= scaleReconcileTarget)})
		}
	}
	if res.noExt4 != "" {
		rows = append(rows, row{"(context) the gc on a fresh ext4 was not measured: " + res.noExt4, "", "", "", "", ""})
	}
	return rows
}
