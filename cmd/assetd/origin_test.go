package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// pubLineWriter hands the first line written to it to a channel.
type pubLineWriter struct {
	mu    sync.Mutex
	buf   strings.Builder
	first chan string
	sent  bool
}

func (w *pubLineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if line, _, ok := strings.Cut(w.buf.String(), "\n"); ok && !w.sent {
		w.sent = true
		w.first <- line
	}
	return len(p), nil
}

func TestOriginCommand(t *testing.T) {
	dir := t.TempDir()
	src, out := filepath.Join(dir, "src"), filepath.Join(dir, "out")
	pubWriteTree(t, src, map[string]string{"rohan/VERSION": "1", "rohan/model.splat": "model bytes"})
	pubWriteTree(t, dir, map[string]string{"ids": "app-1\n", "tokens": "# demo\ntok\n"})
	if text, code := pubExecute(t, context.Background(), "publish", src, out); code != 0 {
		t.Fatalf("publish: %s", text)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stdout := &pubLineWriter{first: make(chan string, 1)}
	root := newRootCmd()
	root.SetArgs([]string{"origin", "--root", out, "--listen", "127.0.0.1:0", "--log-level", "warn",
		"--app-ids", filepath.Join(dir, "ids"), "--tokens", filepath.Join(dir, "tokens")})
	root.SetOut(stdout)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	var url string
	select {
	case line := <-stdout.first:
		var ok bool
		if url, ok = strings.CutPrefix(line, "listening on "); !ok {
			t.Fatalf("first line %q, want listening on URL", line)
		}
	case err := <-done:
		t.Fatalf("origin exited: %v", err)
	}

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	get := func(header map[string]string) int {
		req, _ := http.NewRequest("GET", url+"/v1/avatars/rohan/manifest", nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(map[string]string{"X-App-ID": "app-1", "Authorization": "Bearer tok"}); got != 200 {
		t.Errorf("authorized request: %d", got)
	}
	if got := get(map[string]string{"X-App-ID": "app-1"}); got != 401 {
		t.Errorf("request without a token: %d, want 401", got)
	}

	cancel()
	if err := <-done; err != nil {
		t.Errorf("origin after SIGTERM-like cancel: %v", err)
	}
}

func TestOriginUsageErrors(t *testing.T) {
	dir := t.TempDir()
	pubWriteTree(t, dir, map[string]string{"empty": "# nothing\n"})
	for _, args := range [][]string{
		{"origin"},
		{"origin", "--root", dir, "--log-level", "loud"},
		{"origin", "--root", dir, "--app-ids", filepath.Join(dir, "empty")},
		{"origin", "--root", dir, "--tokens", filepath.Join(dir, "missing")},
	} {
		if text, code := pubExecute(t, context.Background(), args...); code != 2 {
			t.Errorf("%q: exit %d, want 2\n%s", args, code, text)
		}
	}
}
