package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assetd/assetd/internal/config"
	"github.com/assetd/assetd/internal/testkit"
)

// syncBuf is a log buffer safe for the daemon's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testOrigin serves one avatar "solo" of one blob, with no max-age, and
// asks for token when it is not "".
func testOrigin(t *testing.T, token string) *httptest.Server {
	blob := bytes.Repeat([]byte("assetd"), 10000)
	o := testkit.NewOrigin(t, &testkit.Avatar{ID: "solo", Version: "1",
		Assets: []testkit.Asset{{Path: "a.bin", Data: blob, SHA256: testkit.Sum(blob)}}})
	o.SetMaxAge(0)
	o.SetToken(token)
	return o.Srv
}

func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

func TestRunServesAndStopsEverything(t *testing.T) {
	defer goleak.VerifyNone(t)
	const token = "daemon-test-token-0123456789"
	srv := testOrigin(t, token)
	defer srv.Close()
	dir := shortDir(t)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Origin.URL = srv.URL
	cfg.Origin.SessionTokenFile = tokenFile
	cfg.Store.Dir = filepath.Join(dir, "state")
	cfg.Store.ReserveBytes = 0
	cfg.API.Socket = filepath.Join(dir, "run", "a.sock")
	cfg.Log.Level = "debug"
	var logs syncBuf

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, Options{Stderr: &logs, Getenv: func(string) string { return "" }}) }()

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
			t.Fatalf("Run returned %v before serving:\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not serving: %v\n%s", err, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := c.Post("http://assetd/v1/avatars/solo/load", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"type":"completed"`) {
		t.Fatalf("load answered %s\n%s", body, logs.String())
	}
	c.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if _, err := os.Lstat(cfg.API.Socket); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Run: %v, want removed", err)
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log shows the token:\n%s", logs.String())
	}
}

func TestRunRefusesAServedSocket(t *testing.T) {
	dir := shortDir(t)
	sock := filepath.Join(dir, "a.sock")
	ln, err := listen(context.Background(), SocketOptions{Path: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.release()
	cfg := config.Default()
	cfg.Store.Dir = filepath.Join(dir, "state")
	cfg.API.Socket = sock
	err = Run(context.Background(), cfg, Options{Stderr: io.Discard})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("Run = %v, want ErrInUse", err)
	}
	if _, err := os.Stat(cfg.Store.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused daemon touched the store: %v", err)
	}
}
