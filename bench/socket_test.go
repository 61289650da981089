package bench

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/manager"
	"github.com/assetd/assetd/internal/store"
)

// managerAPI is api.Manager over the manager, as the daemon wires it.
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

// BenchmarkSocketGet is a cached GET /v1/avatars/{id} through the whole
// daemon stack in process (api.Server on a Unix socket, the real manager
// and store), from 32 goroutines over 32 keep-alive connections: the
// profile of the socket figure of cmd/assetd-bench.
func BenchmarkSocketGet(b *testing.B) {
	dir := b.TempDir()
	src, site := filepath.Join(dir, "src"), filepath.Join(dir, "site")
	av := Avatar{ID: "rohan", Files: Avatars(1)[0].Files}
	for i := range av.Files {
		av.Files[i].Size = 1000
	}
	if err := WriteSource(src, []Avatar{av}, Version); err != nil {
		b.Fatal(err)
	}
	if err := Publish(b.Context(), src, site); err != nil {
		b.Fatal(err)
	}
	origin := httptest.NewServer(NewOrigin(site))
	defer origin.Close()
	st, err := store.Open(filepath.Join(dir, "state"), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	fc, err := fetch.New(fetch.Config{BaseURL: origin.URL})
	if err != nil {
		b.Fatal(err)
	}
	defer fc.Close()
	m := manager.New(st, fc, manager.Options{})
	defer m.Close()
	if _, err := m.Load(b.Context(), av.ID, manager.LoadOptions{}); err != nil {
		b.Fatal(err)
	}

	sock := filepath.Join(dir, "api.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- api.New(managerAPI{m}, api.Options{Logger: slog.New(slog.DiscardHandler)}).Serve(ctx, ln)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()

	const clients = 32
	var d net.Dialer
	tr := &http.Transport{
		DialContext:  func(ctx context.Context, _, _ string) (net.Conn, error) { return d.DialContext(ctx, "unix", sock) },
		MaxIdleConns: clients, MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var failed atomic.Bool
	b.SetParallelism((clients + 1) / 2)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Get("http://assetd/v1/avatars/" + av.ID)
			if err != nil {
				if failed.CompareAndSwap(false, true) {
					b.Error(err)
				}
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK && failed.CompareAndSwap(false, true) {
				b.Errorf("GET: %s", resp.Status)
			}
		}
	})
}
