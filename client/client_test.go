package client

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/errs"
)

// serve answers every request with h on a Unix socket in a temp dir.
func serve(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "c.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	c := New(sock)
	t.Cleanup(func() { srv.Close(); <-done; c.CloseIdleConnections() })
	return c
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDoSendsTargetVerbatim(t *testing.T) {
	var got []string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { got = append(got, r.Host+" "+r.RequestURI) })
	for _, target := range []string{"/v1/avatars/../x", "/v1/avatars/%2e%2e?wait=false", "/v1//load"} {
		resp, err := c.Do(ctx(t), "GET", target, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := "assetd " + target; got[len(got)-1] != want {
			t.Errorf("sent %q, want %q", got[len(got)-1], want)
		}
	}
}

func TestIDsAreEscaped(t *testing.T) {
	var uri string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { uri = r.RequestURI; w.Write([]byte("{}")) })
	c.Get(ctx(t), "a/../b c")
	if uri != "/v1/avatars/a%2F..%2Fb%20c" {
		t.Errorf("sent %q", uri)
	}
	c.Load(ctx(t), "x", LoadOptions{Pin: true, Background: true}, nil)
	if uri != "/v1/avatars/x/load?background=true&pin=true" {
		t.Errorf("sent %q", uri)
	}
}

func TestErrorAnswers(t *testing.T) {
	c := serve(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/avatars/gone" {
			w.WriteHeader(409)
			w.Write([]byte(`{"error":{"code":"avatarAssetMissing","message":"gone","avatarId":"gone","reason":"damaged","asset":"a.bin","transient":false}}`))
			return
		}
		if r.URL.Path == "/v1/avatars/x/load" {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.Write([]byte(`{"type":"progress","avatarId":"x","state":"downloading"}` + "\n"))
			return
		}
		w.WriteHeader(502)
		w.Write([]byte("<html>proxy error</html>"))
	})
	_, err := c.Get(ctx(t), "gone")
	var e *Error
	if !errors.As(err, &e) || e.Code != AvatarAssetMissing || e.Reason != errs.ReasonDamaged || e.Asset != "a.bin" {
		t.Errorf("err = %#v", err)
	}
	if !errors.Is(err, AvatarAssetMissing) {
		t.Error("errors.Is by code failed")
	}
	_, err = c.Health(ctx(t))
	if !errors.Is(err, Internal) {
		t.Errorf("a non-JSON error answer: %v", err)
	}
	// A stream that ends without a result is an error, not a success.
	var seen int
	_, err = c.Load(ctx(t), "x", LoadOptions{}, func(ev apitype.Event) { seen++ })
	if !errors.Is(err, Internal) || seen != 1 {
		t.Errorf("Load without a result: %v after %d events", err, seen)
	}
}

func TestNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	_, err := New(sock).Health(ctx(t))
	var e *Error
	if !errors.As(err, &e) || e.Code != DaemonNotRunning || e.Message != "assetd is not running at "+sock {
		t.Errorf("err = %v", err)
	}
}
