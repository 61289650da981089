package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/assetd/assetd/bench"
	"github.com/assetd/assetd/client"
)

// cachedResult is what a daemon with every avatar cached measures.
type cachedResult struct {
	idleCPU      float64 // the daemon's CPU over the idle window, as a fraction of one core
	assetd, bare []socketResult
	getCLI       []float64 // `assetd get ID` wall times, seconds
	refresh      refreshResult
}

// refreshResult is the 1-of-5-files-changed refresh.
type refreshResult struct {
	took       float64 // seconds
	got, want  int64   // bytes the origin sent; manifest + the changed file
	requested  []string
	wantPaths  []string
	ok         bool
	changed    string // "<avatar>/<path>"
	newVersion string
}

func checkEntries(ctx context.Context, d *daemon, n int) error {
	c := client.New(d.sock)
	defer c.CloseIdleConnections()
	st, err := c.Stats(ctx)
	if err != nil {
		return err
	}
	if st.TotalEntries != n {
		return fmt.Errorf("the daemon indexes %d avatars, want %d", st.TotalEntries, n)
	}
	return nil
}

// measureCached starts a daemon, preloads every avatar (untimed), then
// measures its CPU while idle, the cached get over the socket against the bare handler, the
// `assetd get` command, and a refresh after one file of one avatar changed.
func (c *cold) measureCached(ctx context.Context, origin *bench.Origin, src, site string, avatars []bench.Avatar) (res cachedResult, err error) {
	dir := filepath.Join(c.work, "cached")
	d, err := startDaemon(c.o.assetd, dir, daemonConfig(dir, c.base, ""))
	if err != nil {
		return res, err
	}
	defer func() {
		if serr := d.stop(); err == nil {
			err = serr
		}
	}()
	if _, err := d.waitReady(ctx); err != nil {
		return res, err
	}
	if _, err := d.client(ctx, append([]string{"preload"}, c.ids...)...); err != nil {
		return res, err
	}
	if err := checkEntries(ctx, d, len(c.ids)); err != nil {
		return res, err
	}
	fmt.Fprintf(os.Stderr, "idle CPU over %s\n", c.o.idleCPU)
	if res.idleCPU, err = idleCPU(ctx, d.pid(), c.o.idleCPU); err != nil {
		return res, err
	}

	if res.assetd, res.bare, err = c.socketTrials(ctx, d); err != nil {
		return res, err
	}
	for range 10 {
		took, err := d.client(ctx, "get", c.ids[0])
		if err != nil {
			return res, err
		}
		res.getCLI = append(res.getCLI, took.Seconds())
	}
	res.refresh, err = c.refresh(ctx, d, origin, src, site, avatars)
	return res, err
}

// socketTrials runs -trials trials of each server (3), alternating which goes
// first: the daemon's socket and the bare handler answering the same bytes.
func (c *cold) socketTrials(ctx context.Context, d *daemon) (assetd, bare []socketResult, err error) {
	bodies, err := answers(ctx, d.sock, c.ids)
	if err != nil {
		return nil, nil, err
	}
	data, err := json.Marshal(bodies)
	if err != nil {
		return nil, nil, err
	}
	file := filepath.Join(c.work, "answers.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return nil, nil, err
	}
	sock := filepath.Join(c.work, "bare.sock")
	cmd := exec.Command(c.self, "bare", "-socket", sock, "-answers", file)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	if err := waitSocket(ctx, sock); err != nil {
		return nil, nil, err
	}
	for t := range c.o.trials {
		order := []string{d.sock, sock}
		if t%2 == 1 {
			order = []string{sock, d.sock}
		}
		for _, s := range order {
			pid := d.pid()
			if s == sock {
				pid = cmd.Process.Pid
			}
			r, err := hammer(ctx, s, pid, c.ids, c.o.requests, c.o.clients)
			if err != nil {
				return nil, nil, fmt.Errorf("socket %s: %w", s, err)
			}
			name := "assetd"
			if s == sock {
				bare = append(bare, r)
				name = "bare"
			} else {
				assetd = append(assetd, r)
			}
			fmt.Fprintf(os.Stderr, "socket trial %d  %-6s %8.0f req/s  p50 %v  p99 %v  CPU %v a request\n", t+1, name, r.rps, r.p50, r.p99, r.cpu)
		}
	}
	return assetd, bare, nil
}

func waitSocket(ctx context.Context, sock string) error {
	for range 5000 {
		if conn, err := net.Dial("unix", sock); err == nil {
			return conn.Close()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return fmt.Errorf("nothing listens on %s", sock)
}

// refresh changes one file of five of one avatar, republishes, and times
// `assetd preload` of that avatar, counting what the origin sends.
func (c *cold) refresh(ctx context.Context, d *daemon, origin *bench.Origin, src, site string, avatars []bench.Avatar) (refreshResult, error) {
	a := avatars[min(7, len(avatars)-1)]
	a.Files = slices.Clone(a.Files)
	changed := 3 // anim/talk.bin
	a.Files[changed].Edition++
	res := refreshResult{changed: a.ID + "/" + a.Files[changed].Path, newVersion: "2026-11-02.1"}
	if err := bench.WriteAvatar(src, a, res.newVersion); err != nil {
		return res, err
	}
	if err := bench.Publish(ctx, src, site); err != nil {
		return res, err
	}
	items, err := bench.Items(site, []string{a.ID})
	if err != nil {
		return res, err
	}
	for _, it := range items {
		if it.Rel == a.ID+"/manifest" || it.Rel == res.changed {
			res.want += it.Size
			res.wantPaths = append(res.wantPaths, it.URLPath)
		}
	}
	origin.Reset()
	took, err := d.client(ctx, "preload", a.ID)
	if err != nil {
		return res, err
	}
	res.took = took.Seconds()
	sent, reqs := origin.Sent()
	for _, n := range sent {
		res.got += n
	}
	res.requested = slices.Sorted(maps.Keys(reqs))
	slices.Sort(res.wantPaths)
	res.ok = res.got == res.want && slices.Equal(res.requested, res.wantPaths)
	cl := client.New(d.sock)
	defer cl.CloseIdleConnections()
	av, err := cl.Get(ctx, a.ID)
	if err != nil {
		return res, err
	}
	if av.Version != res.newVersion {
		return res, fmt.Errorf("after the refresh %s is at version %s, want %s", a.ID, av.Version, res.newVersion)
	}
	return res, nil
}
