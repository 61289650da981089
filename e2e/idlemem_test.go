package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestIdleReturnsMemory: after loads of large files (their downloads use
// the fetch pools' 512 KiB chunks), the daemon, once quiet, gives the
// memory back: its RssAnon falls at least 2 MiB below what it was right
// after the loads. An idle Go program runs no GC, so without the release
// (5 s after the last load's event) RssAnon stays where the loads left it.
func TestIdleReturnsMemory(t *testing.T) {
	t.Parallel()
	var avs []*avatar
	for i := range 4 {
		avs = append(avs, newAvatar(t, "big"+strconv.Itoa(i), 3<<20, 3<<20, 2<<20))
	}
	o := newOrigin(t, avs...)
	e := newEnv(t, o)
	p := e.Start()
	c := e.Client()
	for _, a := range avs {
		e.mustLoad(c, a.ID)
	}
	c.CloseIdleConnections()
	pid := p.Cmd.Process.Pid
	after := rssAnon(t, pid)
	deadline := time.Now().Add(waitLimit)
	for {
		now := rssAnon(t, pid)
		if now <= after-2<<20 {
			t.Logf("RssAnon %.1f MiB after the loads, %.1f MiB once quiet", mib(after), mib(now))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("RssAnon %.1f MiB after the loads, still %.1f MiB %v later", mib(after), mib(now), waitLimit)
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.Stop()
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// rssAnon is pid's anonymous resident memory (RssAnon of /proc/PID/status).
func rssAnon(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("RssAnon %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no RssAnon in /proc/%d/status", pid)
	return 0
}
