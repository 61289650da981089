package daemon

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, what string, logs *syncBuf, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 20s for %s; log:\n%s", what, logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestReloadByFileEdits: edits of the config file reload it (a bad one
// changes nothing), a new token file is watched from then on, and nothing
// is left running after Run returns.
func TestReloadByFileEdits(t *testing.T) {
	defer goleak.VerifyNone(t)
	const token = "reload-test-token-42"
	srv := testOrigin(t, token)
	defer srv.Close()
	dir := shortDir(t)
	sock := filepath.Join(dir, "a.sock")
	conf := filepath.Join(dir, "assetd.toml")
	secrets := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	tokenFile := filepath.Join(secrets, "token")
	writeFile(t, tokenFile, "wrong-token-000000\n")
	base := fmt.Sprintf("[origin]\nurl = %q\n[store]\ndir = %q\nreserve_bytes = 0\n[api]\nsocket = %q\n", srv.URL, filepath.Join(dir, "state"), sock)
	writeFile(t, conf, base)

	o := Options{ConfigPath: conf, Stderr: &syncBuf{}, Getenv: func(string) string { return "" }}
	logs := o.Stderr.(*syncBuf)
	cfg, err := LoadConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, o) }()
	c := unixClient(sock)
	defer c.CloseIdleConnections()
	load := func() string {
		resp, err := c.Post("http://assetd/v1/avatars/solo/load", "", nil)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitFor(t, "serving", logs, func() bool {
		resp, err := c.Get("http://assetd/v1/health")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil
	})
	if out := load(); !strings.Contains(out, "sessionTokenExpired") {
		t.Fatalf("load without a token: %s", out)
	}

	writeFile(t, conf, base+"[fetch]\nconcurrency = 0\n")
	waitFor(t, "a failed reload", logs, func() bool { return strings.Contains(logs.String(), "reload failed") })

	// A valid file naming a token file in another directory: the watcher
	// is replaced and follows the new file.
	writeFile(t, conf, strings.Replace(base, "[store]", fmt.Sprintf("session_token_file = %q\n[store]", tokenFile), 1))
	waitFor(t, "a reload", logs, func() bool { return strings.Contains(logs.String(), "configuration reloaded") })
	writeFile(t, tokenFile, token+"\n")
	waitFor(t, "the new token in use", logs, func() bool { return strings.Contains(load(), `"type":"completed"`) })

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return")
	}
	if strings.Contains(logs.String(), token) {
		t.Errorf("the log shows the token:\n%s", logs.String())
	}
}
