package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
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

// TestOddIDsAreRefusedBeforeAnyRequest (issue 14 item 8): every method
// that takes an ID checks it first, with one error for every bad ID.
func TestOddIDsAreRefusedBeforeAnyRequest(t *testing.T) {
	var uris []string
	c := serve(t, func(w http.ResponseWriter, r *http.Request) { uris = append(uris, r.RequestURI); w.Write([]byte("{}")) })
	calls := map[string]func(id string) error{
		"Get":        func(id string) error { _, err := c.Get(ctx(t), id); return err },
		"Load":       func(id string) error { _, err := c.Load(ctx(t), id, LoadOptions{}, nil); return err },
		"Start":      func(id string) error { _, _, err := c.Start(ctx(t), id, LoadOptions{}); return err },
		"CancelLoad": func(id string) error { _, err := c.CancelLoad(ctx(t), id); return err },
		"Clear":      func(id string) error { _, err := c.Clear(ctx(t), id); return err },
		"Size":       func(id string) error { _, err := c.Size(ctx(t), id); return err },
		"Verify":     func(id string) error { _, err := c.Verify(ctx(t), id); return err },
		"SetPinned":  func(id string) error { return c.SetPinned(ctx(t), id, true) },
		"ImportTar":  func(id string) error { _, err := c.ImportTar(ctx(t), id, nil, 0, ImportOptions{}); return err },
	}
	for _, id := range []string{"a b", "rohan/", "", "a/../b c", ".x", strings.Repeat("a", 129)} {
		const rule = ": an avatar ID is 1 to 128 characters of A-Z a-z 0-9 . _ - and does not start with a dot"
		want := fmt.Sprintf("invalid avatar ID %q", id)
		if len(id) > 80 {
			want = fmt.Sprintf("invalid avatar ID %q", id[:80]+"...")
		}
		want += rule
		for name, call := range calls {
			err := call(id)
			var e *Error
			if !errors.As(err, &e) || e.Code != AvatarIDUnrecognized || e.Reason != "invalidId" || e.Message != want {
				t.Errorf("%s(%q) = %v, want %s", name, id, err, want)
			}
		}
	}
	if len(uris) != 0 {
		t.Errorf("requests were sent: %q", uris)
	}
	c.Load(ctx(t), "x", LoadOptions{Pin: true, Background: true}, nil)
	if len(uris) != 1 || uris[0] != "/v1/avatars/x/load?background=true&pin=true" {
		t.Errorf("sent %q", uris)
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
	if !errors.As(err, &e) || e.Code != AvatarAssetMissing || e.Reason != errcode.ReasonDamaged || e.Asset != "a.bin" {
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
