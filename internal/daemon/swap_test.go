package daemon

import (
	"context"
	"log/slog"
	"testing"

	"github.com/assetd/assetd/internal/config"
	"github.com/assetd/assetd/internal/manager"
	"github.com/assetd/assetd/internal/store"
)

// A reload that changes [fetch] makes the new fetch client the old one's
// successor (one download gate and bandwidth limit for both), and a
// request the old client makes afterwards, for a load still running, is
// counted in the manager's totals.
func TestReloadSucceedsTheFetchClient(t *testing.T) {
	srv := testOrigin(t, "")
	defer srv.Close()
	st, err := store.Open(t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := config.Default()
	cfg.Origin.URL = srv.URL
	d := &daemon{opts: Options{Getenv: func(string) string { return "" }}, log: slog.New(slog.DiscardHandler), sess: &session{}, cfg: cfg, store: st}
	if d.fc, err = d.newFetcher(cfg, nil); err != nil {
		t.Fatal(err)
	}
	old := d.fc
	defer old.Close()
	d.mgr = manager.New(st, d.fc, manager.Options{Logger: d.log})
	defer d.mgr.Close()
	ctx := context.Background()
	if _, err := old.Manifest(ctx, "solo", ""); err != nil {
		t.Fatal(err)
	}

	cfg2 := *cfg
	cfg2.Fetch.Concurrency = cfg.Fetch.Concurrency + 1
	if _, err := d.swapFetcher(&cfg2); err != nil {
		t.Fatal(err)
	}
	defer d.closeFetcher()
	if d.fc == old {
		t.Fatal("a reload changing [fetch] kept the client")
	}
	fc, err := d.fetchConfig(&cfg2)
	if err != nil {
		t.Fatal(err)
	}
	if extra, err := old.Successor(fc); err == nil {
		extra.Close()
		t.Fatal("the reloaded client is not the old one's successor")
	}
	if _, err := old.Manifest(ctx, "solo", ""); err != nil { // a load still running on the old client
		t.Fatal(err)
	}
	if got := d.mgr.Metrics().Requests; got != 2 {
		t.Errorf("the manager counts %d requests, the origin saw 2", got)
	}
}
