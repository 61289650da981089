package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
)

// BenchmarkGetAvatar measures cached GET /v1/avatars/{id} through the whole
// server (peer check, path checks, routing, ID validation, encoding)
// against a bare net/http handler that writes a ready-made body of the
// same size, each on its own Unix socket and driven by 32 keep-alive
// clients. It reports requests/s and p99 latency of both and their ratio.
func BenchmarkGetAvatar(b *testing.B) {
	av := sampleAvatar("rohan")
	fm := &apitest.Manager{RetrieveFn: func(string) (*apitype.Avatar, error) { return av, nil }}
	fm.Quiet = true
	ts := start(b, fm, api.Options{})
	body, err := json.Marshal(av)
	if err != nil {
		b.Fatal(err)
	}
	body = append(body, '\n')
	bare := startBare(b, body)

	const clients, rounds = 32, 8
	api := newDriver(ts.sock, clients, len(body))
	bareD := newDriver(bare, clients, len(body))
	defer api.close()
	defer bareD.close()
	// Alternate short rounds so that both servers meet the same
	// background load on a shared machine.
	b.ResetTimer()
	for r := range rounds {
		n := b.N / rounds
		if r == 0 {
			n += b.N % rounds
		}
		if r%2 == 0 {
			api.run(b, "/v1/avatars/rohan", n)
			bareD.run(b, "/v1/avatars/rohan", n)
		} else {
			bareD.run(b, "/v1/avatars/rohan", n)
			api.run(b, "/v1/avatars/rohan", n)
		}
	}
	b.StopTimer()
	apiRPS, apiP99 := api.result()
	bareRPS, bareP99 := bareD.result()
	b.ReportMetric(apiRPS, "api-req/s")
	b.ReportMetric(float64(apiP99.Microseconds()), "api-p99-µs")
	b.ReportMetric(bareRPS, "bare-req/s")
	b.ReportMetric(float64(bareP99.Microseconds()), "bare-p99-µs")
	b.ReportMetric(apiRPS/bareRPS, "ratio")
}

// startBare serves body to every request on a Unix socket.
func startBare(b *testing.B, body []byte) string {
	sock := filepath.Join(b.TempDir(), "bare.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	n := strconv.Itoa(len(body))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = []string{"application/json"}
		w.Header()["Content-Length"] = []string{n}
		w.Write(body)
	})}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	b.Cleanup(func() { srv.Close(); <-done })
	return sock
}

// driver sends GETs from clients goroutines, each with its own keep-alive
// connection, and keeps every latency and the time spent.
type driver struct {
	tr      *http.Transport
	hc      *http.Client
	clients int
	size    int
	lat     []time.Duration
	elapsed time.Duration
}

func newDriver(sock string, clients, size int) *driver {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: clients,
		DisableCompression:  true,
	}
	return &driver{tr: tr, hc: &http.Client{Transport: tr}, clients: clients, size: size}
}

func (d *driver) close() { d.tr.CloseIdleConnections() }

func (d *driver) run(b *testing.B, path string, n int) {
	var next atomic.Int64
	lat := make([][]time.Duration, d.clients)
	var wg sync.WaitGroup
	t0 := time.Now()
	for c := range d.clients {
		wg.Go(func() {
			buf := make([]byte, d.size+64)
			for next.Add(1) <= int64(n) {
				t := time.Now()
				resp, err := d.hc.Get("http://assetd" + path)
				if err != nil {
					b.Error(err)
					return
				}
				got, _ := io.ReadFull(resp.Body, buf)
				resp.Body.Close()
				if resp.StatusCode != 200 || got != d.size {
					b.Errorf("status %d, %d bytes", resp.StatusCode, got)
					return
				}
				lat[c] = append(lat[c], time.Since(t))
			}
		})
	}
	wg.Wait()
	d.elapsed += time.Since(t0)
	d.lat = append(d.lat, slices.Concat(lat...)...)
}

// result is requests/s and the p99 latency of every run so far.
func (d *driver) result() (float64, time.Duration) {
	if len(d.lat) == 0 {
		return 0, 0
	}
	slices.Sort(d.lat)
	return float64(len(d.lat)) / d.elapsed.Seconds(), d.lat[len(d.lat)*99/100]
}
