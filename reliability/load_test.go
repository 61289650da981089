package reliability

import (
	"bufio"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/manager"
	"github.com/assetd/assetd/internal/store"
	"github.com/assetd/assetd/internal/testkit"
)

// loadShape is how hard a load test pushes.
type loadShape struct {
	clients int
	length  time.Duration
}

func loadSize() loadShape {
	if *full {
		return loadShape{clients: 200, length: 20 * time.Second}
	}
	return loadShape{clients: 50, length: 3 * time.Second}
}

const (
	hotAvatars         = 10
	stalledSubscribers = 5
)

// loadOrigin serves 10 hot avatars and generates "dlNNNN" avatars on
// demand (512 KiB each, sent in 16 KiB chunks every 5 ms a download) so
// that downloads keep running during the load.
func loadOrigin(t *testing.T) *binOrigin {
	var hot []*avatar
	for i := range hotAvatars {
		hot = append(hot, newAvatar(fmt.Sprintf("hot%02d", i), uint64(100+i), 48<<10, 16<<10))
	}
	o := newBinOrigin(t, hot...)
	o.Chunk = 16 << 10
	o.SetDelay(5 * time.Millisecond)
	o.Gen = func(id string) *avatar {
		if !strings.HasPrefix(id, "dl") {
			return nil
		}
		h := fnv.New64a()
		h.Write([]byte(id))
		return newAvatar(id, h.Sum64(), 384<<10, 128<<10)
	}
	return o
}

// loadResult are a load run's figures.
type loadResult struct {
	ops       map[string]*opStats
	failures  []string
	downloads int64
}

type opStats struct {
	n   atomic.Int64
	mu  sync.Mutex
	lat []time.Duration
}

func (s *opStats) add(d time.Duration) {
	s.n.Add(1)
	s.mu.Lock()
	s.lat = append(s.lat, d)
	s.mu.Unlock()
}

func (s *opStats) quantile(q float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.lat) == 0 {
		return 0
	}
	slices.Sort(s.lat)
	return s.lat[min(len(s.lat)-1, int(q*float64(len(s.lat))))]
}

func (r *loadResult) summary() string {
	var parts []string
	var total int64
	for _, name := range []string{"get", "ls", "stats", "load", "abandon"} {
		s := r.ops[name]
		total += s.n.Load()
		parts = append(parts, fmt.Sprintf("%s %d (p50 %v, p99 %v)", name, s.n.Load(),
			s.quantile(0.5).Round(time.Microsecond*100), s.quantile(0.99).Round(time.Millisecond)))
	}
	return fmt.Sprintf("%d requests, %d failed: %s; %d background downloads completed",
		total, len(r.failures), strings.Join(parts, ", "), r.downloads)
}

// runLoad runs shape.clients clients of sock for shape.length, each
// cycling through get, ls, stats and a streamed load, while one more
// goroutine keeps downloading new avatars. Every request must succeed.
func runLoad(t *testing.T, sock string, shape loadShape) *loadResult {
	t.Helper()
	e := &env{Env: &testkit.Env{T: t, Sock: sock, Limit: waitLimit}, t: t}
	c := testkit.SocketClient(sock, waitLimit, shape.clients+8)
	defer c.CloseIdleConnections()

	// The hot avatars are cached first.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for i := range hotAvatars {
		if ev, err := e.load(ctx, c, fmt.Sprintf("hot%02d", i)); err != nil || ev.Type != apitype.EventCompleted {
			t.Fatalf("warming hot%02d: %v %+v", i, err, ev.Error)
		}
	}

	res := &loadResult{ops: map[string]*opStats{"get": {}, "ls": {}, "stats": {}, "load": {}, "abandon": {}}}
	var mu sync.Mutex
	failf := func(format string, args ...any) {
		mu.Lock()
		if len(res.failures) < 20 {
			res.failures = append(res.failures, fmt.Sprintf(format, args...))
		}
		mu.Unlock()
	}
	runCtx, stop := context.WithTimeout(context.Background(), shape.length)
	defer stop()

	// Five subscribers of /v1/events that never read: a slow subscriber
	// loses events and must never hold up a load.
	for range stalledSubscribers {
		req, err := http.NewRequestWithContext(runCtx, "GET", "http://assetd/v1/events", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := testkit.SocketClient(sock, waitLimit, 1).Do(req)
		if err != nil {
			t.Fatalf("a stalled subscriber: %v", err)
		}
		defer resp.Body.Close()
	}
	var current atomic.Int64 // the background download in flight
	var downloads atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; runCtx.Err() == nil; i++ {
			current.Store(int64(i))
			ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
			ev, err := e.load(ctx, c, fmt.Sprintf("dl%04d", i))
			cancel()
			if err != nil || ev.Type != apitype.EventCompleted {
				failf("download dl%04d: %v %+v", i, err, ev.Error)
				return
			}
			downloads.Add(1)
		}
	}()
	for w := range shape.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; runCtx.Err() == nil; i++ {
				hot := fmt.Sprintf("hot%02d", i%hotAvatars)
				start := time.Now()
				var name string
				var err error
				switch i % 5 {
				case 0:
					name = "get"
					var av apitype.Avatar
					err = expect200(testkit.Do(c, "GET", "/v1/avatars/"+hot, nil, &av))
					if err == nil && av.State != apitype.StateReady {
						err = fmt.Errorf("%s is %s", hot, av.State)
					}
				case 1:
					name = "ls"
					var l apitype.List
					err = expect200(testkit.Do(c, "GET", "/v1/avatars", nil, &l))
					if err == nil && len(l.Avatars) < hotAvatars {
						err = fmt.Errorf("ls lists %d avatars", len(l.Avatars))
					}
				case 2:
					name = "stats"
					var st apitype.Stats
					err = expect200(testkit.Do(c, "GET", "/v1/cache/stats", nil, &st))
				case 4:
					// A client that goes away mid-stream: a load joined
					// then dropped after its first event, or the event
					// feed dropped after its first line.
					name = "abandon"
					path := "/v1/events"
					method := "GET"
					if i%2 == 0 {
						method, path = "POST", fmt.Sprintf("/v1/avatars/dl%04d/load", current.Load())
					}
					err = abandon(c, method, path)
				default:
					name = "load"
					id := hot
					if i%8 == 3 {
						id = fmt.Sprintf("dl%04d", current.Load()) // joins the download in flight
					}
					ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
					var ev apitype.Event
					ev, err = e.load(ctx, c, id)
					cancel()
					if err == nil && ev.Type != apitype.EventCompleted {
						err = fmt.Errorf("load %s ended %s: %+v", id, ev.Type, ev.Error)
					}
				}
				if err != nil {
					failf("%s: %v", name, err)
					continue
				}
				res.ops[name].add(time.Since(start))
			}
		}()
	}
	wg.Wait()
	res.downloads = downloads.Load()
	for _, f := range res.failures {
		t.Errorf("failed request: %s", f)
	}
	return res
}

// abandon sends a streaming request, reads its first line and hangs up.
func abandon(c *http.Client, method, path string) error {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://assetd"+path, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s %s: status %d", method, path, resp.StatusCode)
	}
	if method == "GET" {
		return nil // the event feed may be quiet: hang up at once
	}
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return fmt.Errorf("%s %s: no first event: %v", method, path, err)
	}
	return nil
}

func expect200(code int, err error) error {
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("status %d", code)
	}
	return nil
}

// TestLoad drives the real daemon with concurrent socket clients while
// downloads run: no request fails, memory stays bounded, and the daemon's
// descriptors return to their level before the load.
func TestLoad(t *testing.T) {
	shape := loadSize()
	o := loadOrigin(t)
	e := newEnv(t, o.Srv.URL)
	e.fetch = "concurrency = 4"
	e.writeConfig()
	p := e.Start()
	pid := p.Pid()

	// Warm up, then take the baseline.
	warm := testkit.SocketClient(e.Sock, waitLimit, 4)
	var h apitype.Health
	if err := expect200(testkit.Do(warm, "GET", "/v1/health", nil, &h)); err != nil {
		t.Fatal(err)
	}
	warm.CloseIdleConnections()
	// The health checks' connections may still be closing: the baseline
	// is the lowest count over a moment.
	unixBefore := testkit.UnixFDs(pid)
	for range 10 {
		time.Sleep(50 * time.Millisecond)
		unixBefore = min(unixBefore, testkit.UnixFDs(pid))
	}
	fdsBefore := testkit.FDCount(pid)
	threadsBefore, rssBefore := testkit.Status(pid, "Threads"), testkit.Status(pid, "VmRSS")

	stopSampling := testkit.SamplePeakRSS(pid, 200*time.Millisecond)
	res := runLoad(t, e.Sock, shape)
	peakRSS := stopSampling()
	hwm := testkit.Status(pid, "VmHWM")

	// Every client connection is closed: the daemon's Unix socket
	// descriptors come back to the listener's. (Its idle keep-alive
	// connections to the origin may stay, so all fds are only reported.)
	var unixAfter int
	deadline := time.Now().Add(10 * time.Second)
	for {
		unixAfter = testkit.UnixFDs(pid)
		if unixAfter <= unixBefore || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fdsAfter, threadsAfter := testkit.FDCount(pid), testkit.Status(pid, "Threads")
	if unixAfter > unixBefore {
		t.Errorf("the daemon holds %d Unix socket descriptors after the load, %d before", unixAfter, unixBefore)
	}
	const rssBound = 512 << 10 // KiB
	if hwm > rssBound {
		t.Errorf("peak RSS %d KiB, over the %d KiB bound", hwm, rssBound)
	}
	p.Stop()
	t.Logf("%s; RSS %d KiB before, peak %d KiB (VmHWM %d KiB); fds %d before, %d after (Unix sockets %d, %d); threads %d before, %d after",
		res.summary(), rssBefore, peakRSS, hwm, fdsBefore, fdsAfter, unixBefore, unixAfter, threadsBefore, threadsAfter)

	loadTable.add(t, fmt.Sprintf("real binary: %d clients for %v, each cycling GET /v1/avatars/{id}, GET /v1/avatars, GET /v1/cache/stats, a streamed POST .../load (cached, or joining the download in flight), and a hang-up (a joined load dropped after its first event, or /v1/events dropped at once); 5 more subscribers of /v1/events that never read; one more client downloading new 512 KiB avatars back to back", shape.clients, shape.length),
		fmt.Sprintf("%s; daemon RSS %.1f MiB before, peak %.1f MiB (VmHWM, bound 512 MiB); Unix socket descriptors %d before, %d after; all descriptors %d before, %d after (idle origin connections); threads %d before, %d after",
			res.summary(), float64(rssBefore)/1024, float64(hwm)/1024, unixBefore, unixAfter, fdsBefore, fdsAfter, threadsBefore, threadsAfter))
}

// managerAPI is api.Manager over the manager, as the daemon adapts it.
type managerAPI struct{ *manager.Manager }

func (m managerAPI) Load(ctx context.Context, id string, o api.LoadOptions) (*apitype.Avatar, error) {
	return m.Manager.Load(ctx, id, manager.LoadOptions(o))
}

func (m managerAPI) Start(ctx context.Context, id string, o api.LoadOptions) (apitype.Load, *apitype.Avatar, error) {
	return m.Manager.Start(ctx, id, manager.LoadOptions(o))
}

func (m managerAPI) Import(ctx context.Context, id string, r io.Reader, o api.ImportOptions) (*apitype.Avatar, error) {
	return m.Manager.Import(ctx, id, r, manager.ImportOptions(o))
}

// TestLoadInProcess is the same load against api + manager + store +
// fetch in this process, so that goleak can see every goroutine: none is
// left once the clients stop and the server and manager are closed.
func TestLoadInProcess(t *testing.T) {
	before := goleak.IgnoreCurrent()
	shape := loadShape{clients: 20, length: 2 * time.Second}
	if *full {
		shape = loadShape{clients: 200, length: 10 * time.Second}
	}
	o := loadOrigin(t)
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"), store.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	f, err := fetch.New(fetch.Config{BaseURL: o.Srv.URL, RetryWaitMin: time.Millisecond, RetryWaitMax: 10 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	m := manager.New(st, f, manager.Options{Logger: quiet()})
	sock := filepath.Join(testkit.ShortDir(t), "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(managerAPI{m}, api.Options{Logger: quiet()})
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()

	res := runLoad(t, sock, shape)

	cancel()
	if err := <-served; err != nil && err != context.Canceled {
		t.Errorf("Serve: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Error(err)
	}
	f.Close()
	if err := st.Close(); err != nil {
		t.Error(err)
	}
	o.Srv.Close()
	leak := goleak.Find(before)
	if leak != nil {
		t.Errorf("goroutines left behind: %v", leak)
	}
	loadTable.add(t, fmt.Sprintf("in-process api + manager + store + fetch on a real socket: %d clients for %v, the same mix", shape.clients, shape.length),
		fmt.Sprintf("%s; goroutines left after Serve, the manager and the store closed: %s", res.summary(), leakWord(leak)))
}

func leakWord(err error) string {
	if err == nil {
		return "none (goleak)"
	}
	return strconv.Quote(err.Error())
}
