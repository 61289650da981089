package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// socketClient is an HTTP client of a Unix socket with room for clients
// keep-alive connections.
func socketClient(sock string, clients int) *http.Client {
	var d net.Dialer
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns: clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients,
		DisableCompression: true,
	}}
}

// socketResult is one trial of GET /v1/avatars/{id} against a socket.
type socketResult struct {
	rps      float64
	p50, p99 time.Duration
	cpu      time.Duration // the server's CPU time per request (user + system)
}

// hammer sends n GET /v1/avatars/{id} (ids in turn) from clients
// goroutines sharing clients keep-alive connections, after a warm-up of
// n/10, and measures the throughput, the latency percentiles and the CPU
// time of the server (process pid) per request: a figure other load on
// the machine does not move as much as throughput.
func hammer(ctx context.Context, sock string, pid int, ids []string, n, clients int) (socketResult, error) {
	hc := socketClient(sock, clients)
	defer hc.CloseIdleConnections()
	run := func(n int, lat []time.Duration) error {
		var next atomic.Int64
		var wg sync.WaitGroup
		var first atomic.Value
		for range clients {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= n || ctx.Err() != nil {
						return
					}
					t0 := time.Now()
					err := getOnce(ctx, hc, ids[i%len(ids)])
					if lat != nil {
						lat[i] = time.Since(t0)
					}
					if err != nil {
						first.CompareAndSwap(nil, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err, _ := first.Load().(error); err != nil {
			return err
		}
		return ctx.Err()
	}
	if err := run(n/10, nil); err != nil {
		return socketResult{}, err
	}
	lat := make([]time.Duration, n)
	cpu0, err := cpuTime(pid)
	if err != nil {
		return socketResult{}, err
	}
	start := time.Now()
	if err := run(n, lat); err != nil {
		return socketResult{}, err
	}
	took := time.Since(start)
	cpu1, err := cpuTime(pid)
	if err != nil {
		return socketResult{}, err
	}
	slices.Sort(lat)
	return socketResult{rps: float64(n) / took.Seconds(), p50: lat[n/2], p99: lat[n*99/100], cpu: (cpu1 - cpu0) / time.Duration(n)}, nil
}

func getOnce(ctx context.Context, hc *http.Client, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://assetd/v1/avatars/"+id, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET /v1/avatars/%s: %s", id, resp.Status)
	}
	return err
}

// answers fetches the daemon's answer to GET /v1/avatars/{id} for each id:
// the bare handler sends the same bytes.
func answers(ctx context.Context, sock string, ids []string) (map[string]json.RawMessage, error) {
	hc := socketClient(sock, 1)
	defer hc.CloseIdleConnections()
	out := map[string]json.RawMessage{}
	for _, id := range ids {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://assetd/v1/avatars/"+id, nil)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET /v1/avatars/%s: %s: %s", id, resp.Status, body)
		}
		out[id] = body
	}
	return out, nil
}

// bareMain is the bare handler: net/http on a Unix socket answering
// GET /v1/avatars/{id} with the bytes assetd answered, and nothing else.
func bareMain(args []string) int {
	fs := flag.NewFlagSet("bare", flag.ExitOnError)
	sock := fs.String("socket", "", "the socket to listen on")
	file := fs.String("answers", "", "JSON object: avatar ID to answer body")
	_ = fs.Parse(args)
	if err := bare(*sock, *file); err != nil {
		fmt.Fprintln(os.Stderr, "bare:", err)
		return 1
	}
	return 0
}

func bare(sock, file string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var bodies map[string]json.RawMessage
	if err := json.Unmarshal(data, &bodies); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/avatars/{id}", func(w http.ResponseWriter, r *http.Request) {
		body, ok := bodies[r.PathValue("id")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}
