package daemon

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assetd/assetd/internal/config"
)

// runDaemon runs Run with cfg until the returned stop, which waits for it
// and fails the test if it returns an error.
func runDaemon(t *testing.T, cfg *config.Config, logs *syncBuf) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, Options{Stderr: logs, Getenv: func(string) string { return "" }}) }()
	c := unixClient(cfg.API.Socket)
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := c.Get("http://assetd/v1/health")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("Run returned %v before serving:\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("not serving: %v\n%s", err, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	}
}

func metricsConfig(t *testing.T, listen string) *config.Config {
	dir := shortDir(t)
	cfg := config.Default()
	cfg.Store.Dir = filepath.Join(dir, "state")
	cfg.Store.ReserveBytes = 0
	cfg.API.Socket = filepath.Join(dir, "run", "a.sock")
	cfg.Metrics.Listen = listen
	return cfg
}

// TestMetricsListenerOwnedByTheDaemon: the daemon serves metrics.listen
// while it runs and closes it, goroutines and all, when it stops.
func TestMetricsListenerOwnedByTheDaemon(t *testing.T) {
	defer goleak.VerifyNone(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var logs syncBuf
	stop := runDaemon(t, metricsConfig(t, addr), &logs)

	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		stop()
		t.Fatalf("GET /metrics on %s: %v\n%s", addr, err, logs.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.CloseIdleConnections()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "# TYPE assetd_avatars gauge") {
		t.Errorf("GET /metrics: %d\n%s", resp.StatusCode, body)
	}
	stop()
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts after Run returned", addr)
	}
}

// TestMetricsListenBusyPortServesAvatarsAnyway: a metrics port taken by
// another process is logged, and the daemon serves its socket without it.
func TestMetricsListenBusyPortServesAvatarsAnyway(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	var logs syncBuf
	stop := runDaemon(t, metricsConfig(t, busy.Addr().String()), &logs)
	stop()
	if !strings.Contains(logs.String(), "cannot serve metrics on metrics.listen") {
		t.Errorf("the busy port was not logged:\n%s", logs.String())
	}
}

// TestRefreshGaugeOnlyWhenRefreshing: with refresh_interval "0" the
// preload list is never refreshed, so no last-refresh time is exposed
// (an alert on its age would fire for nothing).
func TestRefreshGaugeOnlyWhenRefreshing(t *testing.T) {
	srv := testOrigin(t, "")
	defer srv.Close()
	for _, interval := range []config.Duration{0, config.Duration(time.Hour)} {
		cfg := metricsConfig(t, "")
		cfg.Origin.URL = srv.URL
		cfg.Preload.Avatars = []string{"solo"}
		cfg.Preload.RefreshInterval, cfg.Preload.RefreshJitter = interval, 0
		var logs syncBuf
		stop := runDaemon(t, cfg, &logs)
		c := unixClient(cfg.API.Socket)
		var text string
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(text, `assetd_avatars{state="ready"} 1`) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			if resp, err := c.Get("http://assetd/metrics"); err == nil {
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				text = string(b)
			}
		}
		c.CloseIdleConnections()
		stop()
		has := strings.Contains(text, "\nassetd_refresh_last_success_timestamp_seconds ")
		if !strings.Contains(text, `assetd_avatars{state="ready"} 1`) || has != (interval > 0) {
			t.Errorf("refresh_interval %s: refresh gauge present %v:\n%s\n%s", interval, has, text, logs.String())
		}
	}
}

// TestReloadOfMetricsKeysWarnsRestart: metrics.listen and
// metrics.allow_remote apply at restart, and a reload that changes them
// says so (docs/config.md).
func TestReloadOfMetricsKeysWarnsRestart(t *testing.T) {
	var logs syncBuf
	d := &daemon{log: slog.New(slog.NewTextHandler(&logs, nil))}
	old := config.Default()
	cfg := config.Default()
	cfg.Metrics.Listen, cfg.Metrics.AllowRemote = "0.0.0.0:9468", true
	d.warnRestart(old, cfg)
	for _, key := range []string{"key=metrics.listen", "key=metrics.allow_remote"} {
		if !strings.Contains(logs.String(), key) {
			t.Errorf("no restart warning for %s:\n%s", key, logs.String())
		}
	}
}
