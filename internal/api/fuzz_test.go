package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
)

// FuzzRequest feeds arbitrary request lines, headers and bodies through
// the API's handler, decoded by net/http as the socket server decodes
// them. The handler never panics nor hangs, never answers 5xx (the fake
// manager only reports "not cached"), and every 4xx carries an error
// body with a code and a message.
func FuzzRequest(f *testing.F) {
	seeds := []struct{ method, target, header, body string }{
		{"GET", "/v1/health", "", ""},
		{"GET", "/v1/avatars", "", ""},
		{"GET", "/v1/avatars/rohan", "", ""},
		{"POST", "/v1/avatars/rohan/load", "", ""},
		{"POST", "/v1/avatars/rohan/load?wait=false", "", ""},
		{"DELETE", "/v1/avatars/rohan/load", "", ""},
		{"DELETE", "/v1/loads", "", ""},
		{"DELETE", "/v1/avatars", "", ""},
		{"POST", "/v1/cache/lru?keep=3", "", ""},
		{"GET", "/v1/avatars/rohan/size", "", ""},
		{"GET", "/v1/cache/stats", "", ""},
		{"POST", "/v1/avatars/rohan/verify", "", ""},
		{"PUT", "/v1/session", "Content-Type: application/json", `{"sessionToken":"t","appId":"a"}`},
		{"POST", "/v1/avatars/rohan/import?version=1", "Content-Type: application/x-tar", "ok.bin\x00"},
		{"PUT", "/v1/avatars/rohan/pin", "", ""},
		{"GET", "/v1/events", "", ""},
		{"GET", "/metrics", "", ""},
		{"POST", "/v1/avatars/%2e%2e/load", "", ""},
		{"GET", "/v1/avatars//x", "", ""},
		{"GET", "/v1/avatars/a\\b", "", ""},
		{"GET", "/v1/avatars/rohan", "Origin: https://evil.example", ""},
		{"PUT", "/v1/session", "Content-Type: application/json", `{"sessionToken":`},
		{"POST", "/v1/cache/lru?keep=-1&keep=2", "", ""},
		{"PATCH", "/v1/health", "", ""},
		{"GET", "http://assetd/v1/health", "", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.header, []byte(s.body))
	}
	fm := &apitest.Manager{Quiet: true, SubscribeFn: func() (<-chan apitype.Event, func()) {
		ch := make(chan apitype.Event)
		close(ch)
		return ch, func() {}
	}}
	srv := api.New(fm, api.Options{SetSession: func(token, appID string) error { return nil }})
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, method, target, header string, body []byte) {
		raw := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: assetd\r\n%s\r\nContent-Length: %d\r\n\r\n", method, target, header, len(body))
		req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(raw + string(body))))
		if err != nil {
			return // net/http answers 400 itself; the handler never sees it
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req = req.WithContext(ctx)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if ctx.Err() != nil {
			t.Fatalf("%s %q hung until its context ended", method, target)
		}
		status := w.Code
		if status < 200 || status > 599 {
			t.Fatalf("%s %q: status %d", method, target, status)
		}
		if status >= 500 {
			t.Fatalf("%s %q: status %d: %s", method, target, status, w.Body.Bytes())
		}
		if status >= 400 {
			var env errcode.Envelope
			if err := json.Unmarshal(w.Body.Bytes(), &env); err != nil {
				t.Fatalf("%s %q: %d answer is not error JSON: %q", method, target, status, w.Body.Bytes())
			}
			if env.Error.Code == "" || env.Error.Message == "" {
				t.Fatalf("%s %q: %d error without code or message: %q", method, target, status, w.Body.Bytes())
			}
			return
		}
		// 2xx: JSON, or NDJSON of events, or the metrics text.
		if ct := w.Header().Get("Content-Type"); strings.HasPrefix(ct, "application/json") || strings.HasPrefix(ct, "application/x-ndjson") {
			for _, line := range bytes.Split(bytes.TrimSpace(w.Body.Bytes()), []byte("\n")) {
				if len(line) > 0 && !json.Valid(line) {
					t.Fatalf("%s %q: %d answer line is not JSON: %q", method, target, status, line)
				}
			}
		}
	})
}
