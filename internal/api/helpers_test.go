package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/client"
	"github.com/assetd/assetd/internal/api"
	"github.com/assetd/assetd/internal/api/apitest"
)

// childEnv makes the test binary a client that asks GET /v1/health on the
// socket it names and prints the answer's status and code: the peer
// credential tests run it under another uid.
const childEnv = "ASSETD_API_TEST_CHILD_SOCKET"

// childReqEnv names another request for the child: "POST /v1/reload".
const childReqEnv = "ASSETD_API_TEST_CHILD_REQUEST"

func TestMain(m *testing.M) {
	if sock := os.Getenv(childEnv); sock != "" {
		if spec := os.Getenv(childConnsEnv); spec != "" {
			os.Exit(runConnsChild(sock, spec))
		}
		os.Exit(runChild(sock))
	}
	goleak.VerifyTestMain(m)
}

func runChild(sock string) int {
	c := client.New(sock)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	method, path := http.MethodGet, "/v1/health"
	if req := os.Getenv(childReqEnv); req != "" {
		method, path, _ = strings.Cut(req, " ")
	}
	resp, err := c.Do(ctx, method, path, nil, nil)
	if err != nil {
		os.Stdout.WriteString("error " + err.Error() + "\n")
		return 1
	}
	defer resp.Body.Close()
	var env errcode.Envelope
	body, _ := io.ReadAll(resp.Body)
	json.Unmarshal(body, &env)
	os.Stdout.WriteString(resp.Status[:3] + " " + string(env.Error.Code) + "\n")
	return 0
}

// testServer is an api.Server on a real Unix socket, with the real client.
type testServer struct {
	fm   *apitest.Manager
	c    *client.Client
	sock string
	stop func() // ends Serve and waits for it; idempotent
}

func start(t testing.TB, fm *apitest.Manager, opts api.Options) *testServer {
	t.Helper()
	return startIn(t, t.TempDir(), fm, opts)
}

func startIn(t testing.TB, dir string, fm *apitest.Manager, opts api.Options) *testServer {
	t.Helper()
	srv := apitest.Serve(t, dir, fm, opts)
	ts := &testServer{fm: fm, c: client.New(srv.Sock), sock: srv.Sock}
	ts.stop = func() {
		srv.Stop()
		ts.c.CloseIdleConnections()
	}
	t.Cleanup(ts.c.CloseIdleConnections)
	return ts
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// raw sends one request as it is and returns its status, headers and body.
func (ts *testServer) raw(t testing.TB, method, path string, body io.Reader, hdr http.Header) (int, http.Header, []byte) {
	t.Helper()
	resp, err := ts.c.Do(testCtx(t), method, path, body, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, resp.Header, b
}

// errorBody decodes an error answer, failing when it is not one.
func errorBody(t testing.TB, b []byte) errcode.Body {
	t.Helper()
	var env errcode.Envelope
	if err := json.Unmarshal(b, &env); err != nil || env.Error.Code == "" {
		t.Fatalf("not an error body: %q (%v)", b, err)
	}
	return env.Error
}

func wantCode(t testing.TB, err error, code errcode.Code) *errcode.Error {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *errcode.Error", err, err)
	}
	if e.Code != code {
		t.Fatalf("code = %s (%v), want %s", e.Code, e, code)
	}
	return e
}

var lastUsed = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func sampleAvatar(id string) *apitype.Avatar {
	return &apitype.Avatar{
		AvatarID: id, Version: "2026-11-01.3", State: apitype.StateReady, SizeBytes: 8123456,
		LastUsed: lastUsed, Pinned: true, Source: "origin",
		Assets: []apitype.Asset{
			{Path: "model.splat", Size: 7340032, SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", LocalPath: "/var/lib/assetd/blobs/sha256/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
			{Path: "voice.bin", Size: 783424, SHA256: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752", LocalPath: "/var/lib/assetd/blobs/sha256/60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"},
		},
	}
}
