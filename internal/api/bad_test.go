package api_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/client"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
	"github.com/assetd/assetd/internal/errs"
)

// TestBadRequests sends the requests the acceptance names, and more: each
// gets a 4xx error body, the manager is never called, and the server keeps
// serving.
func TestBadRequests(t *testing.T) {
	fm := &apitest.Manager{RetrieveFn: func(id string) (*apitype.Avatar, error) { return sampleAvatar(id), nil }}
	ts := start(t, fm, api.Options{})
	long := strings.Repeat("a", 300)
	big := func() io.Reader { return bytes.NewReader(bytes.Repeat([]byte("x"), 10<<20)) }
	// bigChunked hides its length, so that the body goes chunked.
	bigChunked := func() io.Reader { return io.MultiReader(strings.NewReader(`{"sessionToken":"`), big()) }
	tests := []struct {
		name, method, path string
		body               func() io.Reader
		hdr                http.Header
		status             int
		code               errcode.Code
	}{
		{"unknown route", "GET", "/v1/nope", nil, nil, 404, errcode.NotFound},
		{"unknown root", "GET", "/", nil, nil, 404, errcode.NotFound},
		{"trailing slash", "GET", "/v1/health/", nil, nil, 404, errcode.NotFound},
		{"wrong method", "PATCH", "/v1/health", nil, nil, 405, errcode.MethodNotAllowed},
		{"wrong method on avatar", "POST", "/v1/avatars/rohan", nil, nil, 405, errcode.MethodNotAllowed},
		{"dot-dot id", "POST", "/v1/avatars/../x/load", nil, nil, 400, errcode.BadRequest},
		{"dot-dot get", "GET", "/v1/avatars/..", nil, nil, 400, errcode.BadRequest},
		{"dot segment", "GET", "/v1/./health", nil, nil, 400, errcode.BadRequest},
		{"encoded dots", "POST", "/v1/avatars/%2e%2e/load", nil, nil, 400, errcode.BadRequest},
		{"encoded dots upper", "GET", "/v1/avatars/%2E%2E", nil, nil, 400, errcode.BadRequest},
		{"encoded slash", "GET", "/v1/avatars/a%2Fb", nil, nil, 400, errcode.BadRequest},
		{"double slash", "POST", "/v1/avatars//load", nil, nil, 400, errcode.BadRequest},
		{"backslash", "GET", "/v1/avatars/a\\b", nil, nil, 400, errcode.BadRequest},
		{"absolute-form", "GET", "http://assetd/v1/health", nil, nil, 400, errcode.BadRequest},
		{"300 characters", "POST", "/v1/avatars/" + long + "/load", nil, nil, 400, errcode.AvatarIDUnrecognized},
		{"empty id", "GET", "/v1/avatars/", nil, nil, 400, errcode.AvatarIDUnrecognized},
		{"space in id", "GET", "/v1/avatars/a%20b", nil, nil, 400, errcode.AvatarIDUnrecognized},
		{"leading dot", "GET", "/v1/avatars/.hidden", nil, nil, 400, errcode.AvatarIDUnrecognized},
		{"10 MiB body", "PUT", "/v1/session", big, nil, 413, errcode.PayloadTooLarge},
		{"10 MiB body on a GET", "GET", "/v1/avatars/rohan", big, nil, 413, errcode.PayloadTooLarge},
		{"10 MiB chunked body", "PUT", "/v1/session", bigChunked, nil, 413, errcode.PayloadTooLarge},
		{"malformed JSON", "PUT", "/v1/session", func() io.Reader { return strings.NewReader(`{"sessionToken":`) }, nil, 400, errcode.BadRequest},
		{"JSON import", "POST", "/v1/avatars/rohan/import", func() io.Reader { return strings.NewReader(`{"dir":"/etc"}`) }, http.Header{"Content-Type": {"application/json"}}, 400, errcode.BadRequest},
		{"chunked import", "POST", "/v1/avatars/rohan/import", bigChunked, http.Header{"Content-Type": {"application/x-tar"}}, 400, errcode.BadRequest},
		{"Origin header", "GET", "/v1/avatars/rohan", nil, http.Header{"Origin": {"https://evil.example"}}, 403, errcode.Forbidden},
		{"Referer header", "DELETE", "/v1/avatars", nil, http.Header{"Referer": {"https://evil.example/x"}}, 403, errcode.Forbidden},
		{"keep=-1", "POST", "/v1/cache/lru?keep=-1", nil, nil, 400, errcode.BadRequest},
		{"keep=abc", "POST", "/v1/cache/lru?keep=abc", nil, nil, 400, errcode.BadRequest},
		{"no keep", "POST", "/v1/cache/lru", nil, nil, 400, errcode.BadRequest},
		{"bad query escape", "POST", "/v1/cache/lru?keep=%zz", nil, nil, 400, errcode.BadRequest},
		{"wait=maybe", "POST", "/v1/avatars/rohan/load?wait=maybe", nil, nil, 400, errcode.BadRequest},
		{"pin=2", "POST", "/v1/avatars/rohan/load?pin=2", nil, nil, 400, errcode.BadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var body io.Reader
			if tt.body != nil {
				body = tt.body()
			}
			status, hdr, b := ts.raw(t, tt.method, tt.path, body, tt.hdr)
			e := errorBody(t, b)
			if status != tt.status || e.Code != tt.code {
				t.Errorf("%d %s (%s), want %d %s", status, e.Code, e.Message, tt.status, tt.code)
			}
			if e.Message == "" || hdr.Get("Content-Type") != "application/json" {
				t.Errorf("message %q, content type %q", e.Message, hdr.Get("Content-Type"))
			}
			if tt.status == 405 && hdr.Get("Allow") == "" {
				t.Error("405 without an Allow header")
			}
			if calls := fm.Calls(); len(calls) != 0 {
				t.Errorf("the manager was called: %v", calls)
			}
			if status == 301 || status == 302 || status == 307 || status == 308 {
				t.Errorf("redirected")
			}
			if _, err := ts.c.Health(testCtx(t)); err != nil {
				t.Fatalf("server stopped serving: %v", err)
			}
		})
	}
}

func TestMethodNotAllowedAllow(t *testing.T) {
	ts := start(t, &apitest.Manager{}, api.Options{})
	for path, allow := range map[string]string{
		"/v1/avatars/rohan/load": "POST, DELETE",
		"/v1/avatars":            "GET, DELETE",
		"/v1/session":            "PUT",
		"/metrics":               "GET",
	} {
		status, hdr, _ := ts.raw(t, "PATCH", path, nil, nil)
		if status != 405 || hdr.Get("Allow") != allow {
			t.Errorf("PATCH %s: %d Allow %q, want 405 %q", path, status, hdr.Get("Allow"), allow)
		}
	}
}

// TestClientRefusesBadIDs: IDs passed to the client are escaped, so the
// server sees them as one segment and refuses them.
func TestClientRefusesBadIDs(t *testing.T) {
	fm := &apitest.Manager{}
	ts := start(t, fm, api.Options{})
	ctx := testCtx(t)
	for _, id := range []string{"../x", "%2e%2e", strings.Repeat("b", 300), "", "a/b", "a b"} {
		for _, err := range []error{errOnly(ts.c.Get(ctx, id)), errOnly(ts.c.Load(ctx, id, client.LoadOptions{}, nil))} {
			code := errs.CodeOf(err)
			if code != errcode.BadRequest && code != errcode.AvatarIDUnrecognized {
				t.Errorf("id %q: %v, want badRequest or avatarIDUnrecognized", id, err)
			}
		}
	}
	if calls := fm.Calls(); len(calls) != 0 {
		t.Errorf("the manager was called: %v", calls)
	}
}
