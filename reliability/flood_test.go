package reliability

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/testkit"
)

// floodEnv makes the test binary a flooding client (floodChild), run by
// TestFlood as another uid: "loads N SOCK" or "subs N SOCK".
const floodEnv = "ASSETD_RELIABILITY_FLOOD"

// floodUID is the local user that floods: in allowed_uids, neither root
// nor the daemon's own user, so the caps apply to it.
const floodUID = 4242

// floodReport is what a flooding child prints, one JSON line, once its
// flood is sent.
type floodReport struct {
	Sent     int            `json:"sent"`
	ByResult map[string]int `json:"byResult"` // "202", "429 tooManyLoads", ...
	Seconds  float64        `json:"seconds"`
}

// floodChild floods the socket and holds what it opened until its stdin
// closes; a loads flood then cancels every load (DELETE /v1/loads).
func floodChild(spec string) int {
	var kind, sock string
	var n int
	if _, err := fmt.Sscan(spec, &kind, &n, &sock); err != nil {
		fmt.Fprintln(os.Stderr, "bad flood spec:", spec)
		return 2
	}
	start := time.Now()
	rep := floodReport{ByResult: map[string]int{}}
	var hold []net.Conn
	switch kind {
	case "loads":
		rep.ByResult = floodLoads(sock, n)
	case "subs":
		for range n {
			c, err := net.Dial("unix", sock)
			if err != nil {
				rep.ByResult["dial error"]++
				continue
			}
			// The request, and never a byte read.
			if _, err := fmt.Fprintf(c, "GET /v1/events HTTP/1.1\r\nHost: assetd\r\n\r\n"); err != nil {
				rep.ByResult["write error"]++
			} else {
				rep.ByResult["sent"]++
			}
			hold = append(hold, c)
		}
	}
	rep.Sent, rep.Seconds = n, time.Since(start).Seconds()
	b, _ := json.Marshal(rep)
	fmt.Println(string(b))
	io.Copy(io.Discard, os.Stdin)
	for _, c := range hold {
		c.Close()
	}
	if kind == "loads" {
		c := testkit.SocketClient(sock, waitLimit, 1)
		code, err := testkit.Do(c, "DELETE", "/v1/loads", nil, nil)
		fmt.Println("cancel", code, err)
	}
	return 0
}

// floodLoads sends n POST ?wait=false loads of distinct IDs over 16
// connections and counts the answers.
func floodLoads(sock string, n int) map[string]int {
	var mu sync.Mutex
	out := map[string]int{}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			c := testkit.SocketClient(sock, waitLimit, 1)
			defer c.CloseIdleConnections()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				var body errcode.Envelope
				code, err := testkit.Do(c, "POST", fmt.Sprintf("/v1/avatars/fl%04d/load?wait=false", i), nil, &body)
				key := strconv.Itoa(code)
				switch {
				case err != nil:
					key = "error"
				case code >= 400:
					key += " " + body.Error.Reason
				}
				mu.Lock()
				out[key]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}

// flooder is a running flood child.
type flooder struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *bufio.Scanner
	report floodReport
}

// startFlood runs the flood as floodUID and waits until it is sent.
func startFlood(t *testing.T, self, kind string, n int, sock string) *flooder {
	t.Helper()
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = testkit.CleanEnv(fmt.Sprintf("%s=%s %d %s", floodEnv, kind, n, sock))
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: floodUID, Gid: floodUID}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &flooder{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
	t.Cleanup(func() { f.stop() })
	if !f.out.Scan() {
		t.Fatalf("the %s flood printed nothing", kind)
	}
	if err := json.Unmarshal(f.out.Bytes(), &f.report); err != nil {
		t.Fatalf("the %s flood printed %q", kind, f.out.Text())
	}
	return f
}

// stop lets the flood go (a loads flood cancels its loads) and returns
// what it printed last.
func (f *flooder) stop() string {
	if f.stdin == nil {
		return ""
	}
	f.stdin.Close()
	f.stdin = nil
	var last string
	for f.out.Scan() {
		last = f.out.Text()
	}
	f.cmd.Wait()
	return last
}

// results renders a flood's answers, sorted.
func (r floodReport) results() string {
	var parts []string
	for _, k := range []string{"202", "200", "sent", "429 tooManyLoads"} {
		if v, ok := r.ByResult[k]; ok {
			parts = append(parts, fmt.Sprintf("%d × %s", v, k))
		}
	}
	for k, v := range r.ByResult {
		if k != "202" && k != "200" && k != "sent" && k != "429 tooManyLoads" {
			parts = append(parts, fmt.Sprintf("%d × %s", v, k))
		}
	}
	return strings.Join(parts, ", ")
}

// floodShape is how hard TestFlood floods.
func floodShape() (loads, subs int) {
	if *full {
		return 3000, 1100
	}
	return 300, 110
}

// TestFlood: a local user (uid 4242, in allowed_uids) floods the daemon,
// which runs under `prlimit --nofile=1024` with the shipped rate limits:
// first 3,000 ?wait=false loads of distinct avatars then DELETE /v1/loads,
// then 1,100 GET /v1/events streams it never reads. Before, during and
// after each, root preloads a 2 MiB avatar with the CLI and asks stats:
// the preload takes at most 3 s more than alone, stats answers within 1 s,
// and the daemon's peak RSS stays under 128 MiB.
func TestFlood(t *testing.T) {
	if os.Geteuid() != 0 {
		secTable.add(t, "floods by another uid", "skipped: needs root to run a client as another uid")
		t.Skip("needs root to run the flood as another uid (SysProcAttr.Credential)")
	}
	if _, err := exec.LookPath("prlimit"); err != nil {
		secTable.add(t, "floods by another uid", "skipped: no prlimit")
		t.Skip("needs prlimit")
	}
	nLoads, nSubs := floodShape()
	// The flooding uid runs a copy of this binary: it must reach it.
	dir := testkit.ShortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(dir, "reliability.test")
	copyExecutable(t, self)

	// Root's avatars: 2 MiB each, one per measurement so that each is a
	// download. The flood's avatars are made on demand: 16 KiB each.
	phases := []string{"alone", "during the loads flood", "after DELETE /v1/loads", "during the subscriber flood", "after the subscribers left"}
	var mine []*avatar
	for i := range phases {
		mine = append(mine, newAvatar(fmt.Sprintf("root%d", i), uint64(900+i), 1<<20, 512<<10, 512<<10))
	}
	o := newBinOrigin(t, mine...)
	o.Gen = func(id string) *avatar {
		if !strings.HasPrefix(id, "fl") {
			return nil
		}
		h := fnv.New64a()
		h.Write([]byte(id))
		return newAvatar(id, h.Sum64(), 16<<10)
	}
	e := newEnv(t, o.Srv.URL)
	if err := os.Chmod(e.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.api = fmt.Sprintf("allowed_uids = [%d]", floodUID)
	e.writeConfig()
	p := e.Run(exec.Command("prlimit", "--nofile=1024", "--", bin, "serve", "--config", e.Config))
	e.WaitHealthy(p)
	pid := p.Pid()
	// The config refuses a world-writable socket; the test opens it to
	// the flooding uid (its own group is not the socket's).
	if err := os.Chmod(e.Sock, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(e.Sock), 0o755); err != nil {
		t.Fatal(err)
	}
	rssBefore := testkit.Status(pid, "VmRSS")

	stopSampling := testkit.SamplePeakRSS(pid, 100*time.Millisecond)

	c := testkit.SocketClient(e.Sock, waitLimit, 4)
	defer c.CloseIdleConnections()
	type measure struct {
		phase     string
		preload   time.Duration
		statsMax  time.Duration
		unixConns int
	}
	var ms []measure
	measureNow := func(i int) measure {
		t.Helper()
		m := measure{phase: phases[i]}
		for range 5 {
			start := time.Now()
			var st apitype.Stats
			if err := expect200(testkit.Do(c, "GET", "/v1/cache/stats", nil, &st)); err != nil {
				t.Errorf("%s: stats: %v", m.phase, err)
			}
			m.statsMax = max(m.statsMax, time.Since(start))
		}
		start := time.Now()
		out, err := exec.Command(bin, "--socket", e.Sock, "preload", "--json", mine[i].ID).CombinedOutput()
		m.preload = time.Since(start)
		if err != nil {
			t.Errorf("%s: root's preload of %s: %v\n%s", m.phase, mine[i].ID, err, testkit.Tail(string(out)))
		}
		m.unixConns = testkit.UnixFDs(pid)
		ms = append(ms, m)
		return m
	}

	alone := measureNow(0)
	loads := startFlood(t, self, "loads", nLoads, e.Sock)
	measureNow(1)
	cancelled := loads.stop()
	measureNow(2)
	subs := startFlood(t, self, "subs", nSubs, e.Sock)
	measureNow(3)
	subs.stop()
	measureNow(4)

	peakRSS := stopSampling()
	hwm := testkit.Status(pid, "VmHWM")
	log := p.Stderr.String()
	exhausted := strings.Count(log, "out of file descriptors")
	p.Stop()

	var rows []string
	for _, m := range ms {
		ok := "ok"
		if m.preload > alone.preload+3*time.Second || m.statsMax > time.Second {
			ok = "over"
			t.Errorf("%s: root's preload took %v (alone %v; bound +3 s), stats at most %v (bound 1 s)",
				m.phase, m.preload.Round(time.Millisecond), alone.preload.Round(time.Millisecond), m.statsMax.Round(time.Millisecond))
		}
		rows = append(rows, fmt.Sprintf("%s: preload %.2f s, stats ≤ %d ms, %d Unix sockets held (%s)",
			m.phase, m.preload.Seconds(), m.statsMax.Milliseconds(), m.unixConns, ok))
	}
	const rssBound = 128 << 10 // KiB
	if hwm > rssBound {
		t.Errorf("peak RSS %d KiB, over the %d KiB bound", hwm, rssBound)
	}
	if loads.report.ByResult["202"] == 0 || subs.report.ByResult["sent"] == 0 {
		t.Errorf("the floods did not reach the daemon: %+v %+v", loads.report, subs.report)
	}
	t.Logf("loads flood: %s in %.1f s; %s; subscriber flood: %s; %s; RSS %d KiB before, peak %d KiB sampled, VmHWM %d KiB; %d descriptor warnings",
		loads.report.results(), loads.report.Seconds, cancelled, subs.report.results(), strings.Join(rows, "; "),
		rssBefore, peakRSS, hwm, exhausted)
	secTable.add(t, fmt.Sprintf("real binary under `prlimit --nofile=1024`, shipped rate limits (20 requests/s, burst 10): uid %d (in allowed_uids, via SysProcAttr.Credential) sends %d POST .../load?wait=false of distinct avatars, then DELETE /v1/loads; then opens %d GET /v1/events it never reads. Root preloads a 2 MiB avatar with the CLI and asks stats 5 times alone, during and after each flood",
		floodUID, nLoads, nSubs),
		fmt.Sprintf("loads flood answered %s; subscriber flood: %d connections sent their request; %s; daemon RSS %.1f MiB before, peak %.1f MiB (VmHWM, bound 128 MiB); %d descriptor-exhaustion warnings",
			loads.report.results(), subs.report.ByResult["sent"], strings.Join(rows, "; "),
			float64(rssBefore)/1024, float64(hwm)/1024, exhausted))
}

// copyExecutable copies the running test binary to dst, mode 0755.
func copyExecutable(t *testing.T, dst string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
