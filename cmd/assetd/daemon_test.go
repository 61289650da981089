package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
)

// testDaemon is the daemon's real API layer, api.Server on a Unix socket,
// over an apitest.Manager the test scripts. The commands reach it through
// a transparent proxy that reads the answers as they pass: it counts the
// load events the server wrote, so that a scripted load hands out its next
// event only once the server has written the last (Manager.Delivered). The
// API collapses progress events its reader has not taken, and the tests
// assert on each one.
type testDaemon struct {
	*apitest.Manager
	sock string // the proxy's socket: what the commands dial

	mu      sync.Mutex
	conns   int               // connections the proxy accepted
	open    map[net.Conn]bool // the proxy's connections, both sides
	closed  bool              // the test is ending: no new connections
	seen    map[string]int    // NDJSON events the server wrote, by avatar ID
	handed  map[string]int    // scripted events handed to the API, by avatar ID
	changed chan struct{}     // closed and replaced when seen grows
	wg      sync.WaitGroup
}

// noLeaks fails t if goroutines started during the test outlive it and
// its cleanups (the daemon's server and proxy among them).
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func startDaemon(t *testing.T) *testDaemon {
	t.Helper()
	d := &testDaemon{Manager: &apitest.Manager{}, open: map[net.Conn]bool{}, seen: map[string]int{},
		handed: map[string]int{}, changed: make(chan struct{})}
	d.Delivered = d.delivered
	srv := apitest.Serve(t, "", d.Manager, api.Options{SetSession: d.SetSession})
	d.sock = filepath.Join(filepath.Dir(srv.Sock), "s")
	ln, err := net.Listen("unix", d.sock)
	if err != nil {
		t.Fatal(err)
	}
	d.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("unix", srv.Sock)
			if err != nil {
				t.Errorf("proxy: %v", err)
				c.Close()
				continue
			}
			d.mu.Lock()
			closed := d.closed
			if !closed {
				d.conns++
				d.open[c], d.open[s] = true, true
				d.wg.Go(func() { d.pipe(c, s) })
			}
			d.mu.Unlock()
			if closed {
				c.Close()
				s.Close()
			}
		}
	})
	// Runs before the server's own cleanup: the proxy's connections close
	// first, which ends the requests still running.
	t.Cleanup(func() {
		ln.Close()
		d.mu.Lock()
		d.closed = true
		for c := range d.open {
			c.Close()
		}
		d.mu.Unlock()
		d.wg.Wait()
	})
	return d
}

// pipe copies both ways until either side ends, then closes both.
func (d *testDaemon) pipe(c, s net.Conn) {
	var wg sync.WaitGroup
	end := func() {
		c.Close()
		s.Close()
	}
	wg.Go(func() {
		io.Copy(s, c)
		end()
	})
	wg.Go(func() {
		pr, pw := io.Pipe()
		wg.Go(func() {
			d.readAnswers(pr)
			io.Copy(io.Discard, pr)
		})
		io.Copy(c, io.TeeReader(s, pw))
		pw.Close()
		end()
	})
	wg.Wait()
	d.mu.Lock()
	delete(d.open, c)
	delete(d.open, s)
	d.mu.Unlock()
}

// readAnswers reads the server's answers on one connection and counts
// the events of its NDJSON streams.
func (d *testDaemon) readAnswers(r io.Reader) {
	br := bufio.NewReader(r)
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return
		}
		if ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); ct == "application/x-ndjson" {
			sc := bufio.NewScanner(resp.Body)
			sc.Buffer(nil, 1<<20)
			for sc.Scan() {
				var ev apitype.Event
				if json.Unmarshal(sc.Bytes(), &ev) == nil {
					d.mu.Lock()
					d.seen[ev.AvatarID]++
					close(d.changed)
					d.changed = make(chan struct{})
					d.mu.Unlock()
				}
			}
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

// delivered waits until the server has written ev, or the load's caller
// has left.
func (d *testDaemon) delivered(ctx context.Context, ev apitype.Event) {
	d.mu.Lock()
	d.handed[ev.AvatarID]++
	n := d.handed[ev.AvatarID]
	d.mu.Unlock()
	for {
		d.mu.Lock()
		ok, changed := d.seen[ev.AvatarID] >= n, d.changed
		d.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// connections is how many connections the commands opened.
func (d *testDaemon) connections() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conns
}

// progressEvents is a load of total bytes reported at each of the given
// percentages, then completed.
func progressEvents(id string, total int64, pcts ...int) []apitype.Event {
	var evs []apitype.Event
	for _, p := range pcts {
		done := total * int64(p) / 100
		evs = append(evs, apitype.Event{Type: apitype.EventProgress, AvatarID: id, State: apitype.StateDownloading,
			Progress: float64(p) / 100, BytesDone: done, BytesTotal: total})
	}
	av := testAvatar(id, total)
	return append(evs, apitest.Completed(&av))
}

func testAvatar(id string, size int64) apitype.Avatar {
	return apitype.Avatar{AvatarID: id, Version: "2026-11-01.3", State: apitype.StateReady, SizeBytes: size,
		Assets: []apitype.Asset{
			{Path: "model.splat", Size: size - 1000, SHA256: strings.Repeat("a", 64), LocalPath: "/var/lib/assetd/blobs/sha256/" + strings.Repeat("a", 64)},
			{Path: "meta.json", Size: 1000, SHA256: strings.Repeat("b", 64), LocalPath: "/var/lib/assetd/blobs/sha256/" + strings.Repeat("b", 64)},
		}}
}

// cli runs assetd in-process as main's run does, with captured output,
// and returns what it printed and its exit code.
func cli(t *testing.T, ctx context.Context, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code = finish(root, args, err, &out, &errOut)
	return out.String(), errOut.String(), code
}

// lines returns the lines of s that start with prefix.
func lines(s, prefix string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}
