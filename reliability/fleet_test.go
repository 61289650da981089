package reliability

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

var (
	fleetRun     = flag.Bool("reliability.fleet", false, "run the fleet test (make fleet-test; make reliability runs it too)")
	fleetDoc     = flag.String("fleet.doc", "", "write the Fleet test section of this docs/fleet.md")
	fleetDevices = flag.Int("fleet.devices", 30, "daemons in the fleet test")
)

var fleetTable = newTable("Fleet (real daemons behind deploy/site-cache/nginx.conf over TLS, one assetd origin)",
	"load applied", "origin traffic", "time", "peak RSS of the fleet")

// Shape of the fleet test's avatars: each has a model and a face.
const (
	fleetAvatars   = 10
	fleetModelSize = 4 << 20
	fleetFaceSize  = 64 << 10
	fleetApp       = "fleet-app"
	fleetChanged   = "fleet03" // the avatar whose model is republished
)

// TestFleet: n real `assetd serve` processes (own state dir, own socket,
// own token, one app ID; the origin as their mirror) behind the shipped site cache
// (deploy/site-cache/nginx.conf, run by nginx over TLS with a test CA the
// devices trust through origin.ca_file) in front of one `assetd origin`
// over TLS that requires the app ID and the tokens. All preload the same 10
// avatars at once; then one file is republished and every device
// refreshes its 10 avatars at once (the loads a periodic refresh makes).
// It requires that each blob leaves the origin once, whole, and that every
// manifest request reaches the origin; it reports the origin's requests
// and bytes, the times, and the fleet's peak RSS.
func TestFleet(t *testing.T) {
	if !*fleetRun && !*full {
		t.Skip("the fleet test runs with make fleet-test (-reliability.fleet) and make reliability")
	}
	n := *fleetDevices
	const limit = 3 * time.Minute
	dir := testkit.ShortDir(t)
	src, site := filepath.Join(dir, "src"), filepath.Join(dir, "site")

	// The avatars: pseudo-random files, published by the real tool.
	blobSize := map[string]int64{} // origin path -> size
	want := map[string]string{}    // avatar -> sha256 of its model
	writeAsset := func(id, name string, seed uint64, size int) string {
		data := testkit.SeededAvatar(id, seed, size).Assets[0].Data
		p := filepath.Join(src, id, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sum := testkit.Sum(data)
		blobSize["/v1/blobs/sha256/"+sum] = int64(size)
		return sum
	}
	ids := make([]string, fleetAvatars)
	for i := range ids {
		id := fmt.Sprintf("fleet%02d", i)
		ids[i] = id
		want[id] = writeAsset(id, "model.bin", uint64(1000+i), fleetModelSize)
		writeAsset(id, "face.bin", uint64(2000+i), fleetFaceSize)
		if err := os.WriteFile(filepath.Join(src, id, "VERSION"), []byte("1\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	publishTree(t, src, site)

	// The origin, over TLS, requiring the app ID and each device's token.
	ca := testkit.NewCA(t)
	cert, key := ca.Issue(t, "origin", "localhost", "127.0.0.1")
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("device-%02d-%x", i, time.Now().UnixNano())
	}
	list := func(name string, lines []string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	originURL, olog := testkit.StartOriginCmdLog(t, site, limit, "--tls-cert", cert, "--tls-key", key,
		"--log-level", "debug", "--app-ids", list("apps", []string{fleetApp}), "--tokens", list("tokens", tokens))
	sc := testkit.StartSiteCache(t, ca, originURL, limit)

	// The fleet.
	envs := make([]*testkit.Env, n)
	procs := make([]*testkit.Proc, n)
	for i := range envs {
		e := testkit.NewEnv(t, limit)
		e.Write(e.Token, tokens[i]+"\n")
		// docs/fleet.md's device configuration: the cache, the origin
		// behind it as a mirror (used only when the cache fails), the
		// site CA.
		e.WriteConfig(testkit.Config{OriginURL: sc.URL, AppID: fleetApp, MaxRetries: 5, Level: "info",
			Origin: fmt.Sprintf("mirrors = [%q]\nca_file = %q\n", originURL, ca.File)})
		envs[i], procs[i] = e, e.Spawn()
	}
	for i, e := range envs {
		e.WaitHealthy(procs[i])
	}
	rss := sampleRSS(procs, sc.Pid)
	defer rss.stop()

	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()

	// 1. Every device preloads the 10 avatars at once.
	seen := 0 // origin log lines already counted
	start := time.Now()
	if errs := fleetLoad(ctx, envs, ids, nil); len(errs) > 0 {
		t.Fatalf("%d loads failed during the preload; first: %v", len(errs), errs[0])
	}
	preloadTime := time.Since(start)
	pre := originTraffic(t, olog, &seen, n*fleetAvatars, 2*fleetAvatars)

	// 2. One file republished; every device refreshes its avatars at once.
	newModel := writeAsset(fleetChanged, "model.bin", 3000, fleetModelSize)
	publishTree(t, src, site)
	want[fleetChanged] = newModel
	start = time.Now()
	var mu sync.Mutex
	var holds []time.Duration // per device: when it held the new version
	errs := fleetLoad(ctx, envs, ids, func(dev int, ev apitype.Event) {
		if ev.AvatarID != fleetChanged || ev.Type != "completed" || ev.Avatar == nil {
			return
		}
		for _, a := range ev.Avatar.Assets {
			if a.Path == "model.bin" && a.SHA256 == newModel {
				mu.Lock()
				holds = append(holds, time.Since(start))
				mu.Unlock()
			}
		}
	})
	refreshTime := time.Since(start)
	if len(errs) > 0 {
		t.Fatalf("%d loads failed during the refresh; first: %v", len(errs), errs[0])
	}
	if len(holds) != n {
		t.Fatalf("%d of %d devices hold the new %s after the refresh", len(holds), n, fleetChanged)
	}
	allHold := slices.Max(holds)
	post := originTraffic(t, olog, &seen, n*fleetAvatars, 1)
	peak, hwm, cachePeak := rss.stop()

	// What each device holds is the origin's.
	for i, e := range envs {
		c := e.Client()
		for _, id := range ids {
			var av apitype.Avatar
			if code, err := testkit.Do(c, "GET", "/v1/avatars/"+id, nil, &av); code != 200 || err != nil {
				t.Fatalf("device %d GET %s: %d %v", i, id, code, err)
			}
			if !slices.ContainsFunc(av.Assets, func(a apitype.Asset) bool { return a.Path == "model.bin" && a.SHA256 == want[id] }) {
				t.Errorf("device %d holds %s without its published model", i, id)
			}
		}
		c.CloseIdleConnections()
	}

	// Each blob left the origin once, whole.
	for _, tr := range []*traffic{pre, post} {
		for path, got := range tr.blobs {
			if got.requests != 1 || got.bytes != blobSize[path] {
				t.Errorf("%s left the origin %d times, %d bytes; want once, %d bytes", path, got.requests, got.bytes, blobSize[path])
			}
		}
	}
	if len(pre.blobs) != 2*fleetAvatars || len(post.blobs) != 1 {
		t.Errorf("the origin sent %d distinct blobs for the preload (want %d) and %d for the refresh (want 1)",
			len(pre.blobs), 2*fleetAvatars, len(post.blobs))
	}
	for _, tr := range []*traffic{pre, post} {
		if tr.manifests != n*fleetAvatars {
			t.Errorf("the origin answered %d manifest requests for %d loads (each load asks it once)", tr.manifests, n*fleetAvatars)
		}
	}

	fleetBytes := int64(n) * fleetAvatars * (fleetModelSize + fleetFaceSize)
	f := fleetFigures{
		devices: n, avatars: fleetAvatars, blobs: len(pre.blobs), fleetBytes: fleetBytes,
		pre: pre, post: post, preloadTime: preloadTime, refreshTime: refreshTime, allHold: allHold,
		peakRSS: peak, sumHWM: hwm, cacheRSS: cachePeak,
	}
	t.Log(f.table())
	fleetTable.add(t,
		fmt.Sprintf("%d daemons preload the same %d avatars (2 files: %s + %s) at once, then one file is republished and all refresh",
			n, fleetAvatars, mib(fleetModelSize), kib(fleetFaceSize)),
		fmt.Sprintf("preload: %d blob requests, %s for %s delivered to the fleet (each blob once); %d manifest requests. refresh: %d blob request, %s; %d manifest requests (%d answered 304)",
			pre.blobRequests(), mib(pre.blobBytes()), mib(fleetBytes), pre.manifests, post.blobRequests(), mib(post.blobBytes()), post.manifests, post.notModified),
		fmt.Sprintf("preload %s; all %d hold the new version %s after the republish", round(preloadTime), n, round(allHold)),
		fmt.Sprintf("%s (sampled sum), %s (sum of each daemon's peak); nginx %s", mib(peak), mib(hwm), mib(cachePeak)))
	if *fleetDoc != "" {
		if err := writeFleetDoc(*fleetDoc, f); err != nil {
			t.Errorf("writing %s: %v", *fleetDoc, err)
		}
	}
}

func publishTree(t *testing.T, src, out string) {
	t.Helper()
	if b, err := testkit.Command("publish", src, out).CombinedOutput(); err != nil {
		t.Fatalf("assetd publish: %v\n%s", err, b)
	}
}

// fleetLoad loads every avatar of ids on every device at once and returns
// the failures; onEvent (when not nil) hears every device's events.
func fleetLoad(ctx context.Context, envs []*testkit.Env, ids []string, onEvent func(dev int, ev apitype.Event)) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for i, e := range envs {
		c := testkit.SocketClient(e.Sock, e.Limit, len(ids))
		for _, id := range ids {
			wg.Go(func() {
				evs, err := testkit.Load(ctx, c, id, func(ev apitype.Event) {
					if onEvent != nil {
						onEvent(i, ev)
					}
				})
				if err == nil && (len(evs) == 0 || evs[len(evs)-1].Type != "completed") {
					err = fmt.Errorf("device %d %s: last event %+v", i, id, evs[len(evs)-1:])
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("device %d %s: %w", i, id, err))
					mu.Unlock()
				}
			})
		}
		defer c.CloseIdleConnections()
	}
	wg.Wait()
	return errs
}

// traffic is what the origin answered in one phase.
type traffic struct {
	blobs                  map[string]*pathTraffic // 200 answers to blob paths
	manifests, notModified int
	other                  int // errors and anything else
}

type pathTraffic struct {
	requests int
	bytes    int64
}

func (tr *traffic) blobRequests() (n int) {
	for _, b := range tr.blobs {
		n += b.requests
	}
	return n
}

func (tr *traffic) blobBytes() (n int64) {
	for _, b := range tr.blobs {
		n += b.bytes
	}
	return n
}

// originTraffic counts the origin's log lines after *seen, once it has
// logged at least manifests manifest answers and blobs distinct blobs (it
// logs each request after sending its answer, which may be after the
// device is done), and moves *seen past them.
func originTraffic(t *testing.T, log *testkit.LogBuf, seen *int, manifests, blobs int) *traffic {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		reqs := testkit.OriginRequests(log.String())[*seen:]
		tr := &traffic{blobs: map[string]*pathTraffic{}}
		for _, r := range reqs {
			switch {
			case strings.HasPrefix(r.Path, "/v1/avatars/"):
				tr.manifests++
				if r.Status == 304 {
					tr.notModified++
				}
			case strings.HasPrefix(r.Path, "/v1/blobs/") && r.Status == 200:
				b := tr.blobs[r.Path]
				if b == nil {
					b = &pathTraffic{}
					tr.blobs[r.Path] = b
				}
				b.requests++
				b.bytes += r.Bytes
			default:
				tr.other++
			}
		}
		if tr.manifests >= manifests && len(tr.blobs) >= blobs || time.Now().After(deadline) {
			*seen += len(reqs)
			if tr.other > 0 {
				t.Errorf("the origin answered %d requests that were neither a manifest nor a blob's 200", tr.other)
			}
			return tr
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rssSampler sums the fleet's resident memory every 50 ms.
type rssSampler struct {
	procs []*testkit.Proc
	cache int // the site cache's pid
	quit  chan struct{}
	done  chan struct{}
	once  sync.Once
	peak  int64 // bytes, the largest sampled sum
	hwm   int64 // bytes, the sum of each daemon's own peak (VmHWM)
	cpeak int64 // bytes, the site cache's own peak (VmHWM)
}

func sampleRSS(procs []*testkit.Proc, cache int) *rssSampler {
	s := &rssSampler{procs: procs, cache: cache, quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var sum int64
			for _, p := range s.procs {
				if kb := testkit.Status(p.Pid(), "VmRSS"); kb > 0 {
					sum += kb << 10
				}
			}
			s.peak = max(s.peak, sum)
			select {
			case <-s.quit:
				for _, p := range s.procs {
					if kb := testkit.Status(p.Pid(), "VmHWM"); kb > 0 {
						s.hwm += kb << 10
					}
				}
				if kb := testkit.Status(s.cache, "VmHWM"); kb > 0 {
					s.cpeak = kb << 10
				}
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak sampled sum, the sum of
// the daemons' own peaks and the site cache's peak.
func (s *rssSampler) stop() (peak, hwm, cache int64) {
	s.once.Do(func() { close(s.quit) })
	<-s.done
	return s.peak, s.hwm, s.cpeak
}

// fleetFigures are TestFleet's results.
type fleetFigures struct {
	devices, avatars, blobs int
	fleetBytes              int64
	pre, post               *traffic
	preloadTime             time.Duration
	refreshTime             time.Duration
	allHold                 time.Duration
	peakRSS, sumHWM         int64
	cacheRSS                int64 // nginx's peak
}

func (f fleetFigures) table() string {
	var b strings.Builder
	perBlob := func(tr *traffic) string {
		lo, hi := 0, 0
		for _, p := range tr.blobs {
			if lo == 0 || p.requests < lo {
				lo = p.requests
			}
			hi = max(hi, p.requests)
		}
		if lo == hi {
			return fmt.Sprintf("%d", lo)
		}
		return fmt.Sprintf("%d-%d", lo, hi)
	}
	b.WriteString("| Phase | Loads | Blob requests at the origin (per blob) | Blob bytes from the origin | Bytes the devices received | Manifest requests at the origin (304) | Time |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|\n")
	fmt.Fprintf(&b, "| preload, all at once | %d | %d (%s) | %s | %s | %d (%d) | %s |\n",
		f.devices*f.avatars, f.pre.blobRequests(), perBlob(f.pre), mib(f.pre.blobBytes()), mib(f.fleetBytes),
		f.pre.manifests, f.pre.notModified, round(f.preloadTime))
	fmt.Fprintf(&b, "| refresh after republishing one file | %d | %d (%s) | %s | %s | %d (%d) | all hold the new version after %s (refresh done after %s) |\n",
		f.devices*f.avatars, f.post.blobRequests(), perBlob(f.post), mib(f.post.blobBytes()), mib(int64(f.devices)*fleetModelSize),
		f.post.manifests, f.post.notModified, round(f.allHold), round(f.refreshTime))
	fmt.Fprintf(&b, "\nPeak RSS of the whole fleet (%d daemons): %s sampled every 50 ms (sum of each daemon's own peak: %s; %s a daemon). The site cache (nginx, one process): %s.\n",
		f.devices, mib(f.peakRSS), mib(f.sumHWM), mib(f.sumHWM/int64(f.devices)), mib(f.cacheRSS))
	return b.String()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
func kib(n int64) string { return fmt.Sprintf("%d KiB", n>>10) }

func round(d time.Duration) string {
	if d < 10*time.Second {
		return d.Round(10 * time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// writeFleetDoc replaces the body of the Fleet test section of the
// docs/fleet.md at path.
func writeFleetDoc(path string, f fleetFigures) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(raw)
	const head = "## Fleet test\n"
	i := strings.Index(doc, head)
	if i < 0 {
		return fmt.Errorf("%s has no %q section", path, strings.TrimSpace(head))
	}
	body := i + len(head)
	end := len(doc)
	if j := strings.Index(doc[body:], "\n## "); j >= 0 {
		end = body + j + 1
	}
	var b strings.Builder
	b.WriteString("\n<!-- Generated by `make fleet-test` (reliability/TestFleet): do not edit by hand. -->\n\n")
	fmt.Fprintf(&b, "`make fleet-test` (also part of `make reliability`) runs a site on this machine: %d real\n", f.devices)
	b.WriteString("`assetd serve` processes (each its own state dir, socket and token; one app ID; configured as\n")
	b.WriteString("Deployment says: the cache as `origin.url`, the origin as a mirror, the site CA) behind one real\n")
	b.WriteString("nginx running `deploy/site-cache/nginx.conf` as shipped (paths and ports replaced) over TLS with a\n")
	b.WriteString("test CA the devices trust through `origin.ca_file`, in front of one `assetd origin` over TLS that\n")
	fmt.Fprintf(&b, "requires the app ID and the tokens. Every device preloads the same %d avatars at once (a %s\n", f.avatars, mib(fleetModelSize))
	fmt.Fprintf(&b, "model and a %s face each: %d blobs); then one model is republished and every device refreshes\n", kib(fleetFaceSize), f.blobs)
	b.WriteString("its avatars at once (the loads a periodic refresh makes: a conditional manifest request each, and\n")
	b.WriteString("the new blob). The origin's own log counts what left it. The test fails unless each blob left the\n")
	b.WriteString("origin once, whole, and every load's manifest request reached the origin.\n\n")
	b.WriteString(f.table())
	fmt.Fprintf(&b, "\nMachine: %s, %d cores, %s. Run at %s; the machine may have been busy, so times are an\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), time.Now().UTC().Format(time.RFC3339))
	b.WriteString("upper bound (every process, nginx, the origin and the test share it).\n")
	out := doc[:body] + b.String() + "\n" + doc[end:]
	return os.WriteFile(path, []byte(out), 0o644)
}
