package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
)

func execShell(script string, args ...string) *exec.Cmd {
	return exec.Command("sh", append([]string{"-c", script}, args...)...)
}

// raw sends head (request line and headers, without the blank line) and
// then bodyLen bytes of body, or body, over a fresh connection, exactly as
// written: no client library cleans the path.
func (e *env) raw(head, body string, bodyLen int) (int, apitype.ErrorResponse) {
	e.t.Helper()
	conn, err := net.DialTimeout("unix", e.Sock, waitLimit)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(waitLimit))
	if bodyLen == 0 {
		bodyLen = len(body)
	}
	head += fmt.Sprintf("\r\nHost: assetd\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", bodyLen)
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		if _, err := io.WriteString(conn, head+body); err != nil {
			return
		}
		if pad := bodyLen - len(body); pad > 0 {
			// The daemon may stop reading and close early: write errors are expected.
			io.Copy(conn, io.LimitReader(zeros{}, int64(pad)))
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		e.t.Fatalf("%q: reading the answer: %v", head, err)
	}
	defer resp.Body.Close()
	var er apitype.ErrorResponse
	b, _ := io.ReadAll(resp.Body)
	conn.Close()
	<-wrote
	if resp.StatusCode/100 != 2 {
		if err := json.Unmarshal(b, &er); err != nil || er.Error.Code == "" || er.Error.Message == "" {
			e.t.Errorf("%q: status %d with a body that is no error JSON: %q", firstLine(head), resp.StatusCode, b)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			e.t.Errorf("%q: error answer of type %q", firstLine(head), ct)
		}
	}
	return resp.StatusCode, er
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func firstLine(s string) string { return strings.SplitN(s, "\r\n", 2)[0] }

// TestBadRequests: malformed, hostile or oversized requests get a 4xx error
// JSON, change nothing, and the daemon keeps serving.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	a := newAvatar(t, "rohan", 32<<10)
	o := newOrigin(t, a)
	e := newEnv(t, o)
	p := e.Start()
	c := e.Client()
	e.mustLoad(c, "rohan")
	var before apitype.List
	e.must(c, "GET", "/v1/avatars", nil, 200, &before)
	originBefore := o.Requests()

	long := strings.Repeat("a", 300)
	cases := []struct {
		head, body string
		bodyLen    int
		status     int
		code       string // "" = any 4xx error
	}{
		{head: "GET /v1/nope HTTP/1.1", status: 404, code: "notFound"},
		{head: "GET /nope HTTP/1.1", status: 404, code: "notFound"},
		{head: "DELETE /v1/health HTTP/1.1", status: 405, code: "methodNotAllowed"},
		{head: "PUT /v1/avatars/rohan HTTP/1.1", status: 405, code: "methodNotAllowed"},
		{head: "GET /v1/avatars/../x HTTP/1.1", status: 400, code: "badRequest"},
		{head: "DELETE /v1/avatars/../x HTTP/1.1", status: 400, code: "badRequest"},
		{head: "GET /v1/avatars/%2e%2e HTTP/1.1", status: 400, code: "badRequest"},
		{head: "DELETE /v1/avatars/%2e%2e HTTP/1.1", status: 400, code: "badRequest"},
		{head: "POST /v1/avatars/%2E%2E/load HTTP/1.1", status: 400, code: "badRequest"},
		{head: "GET /v1/avatars/" + long + " HTTP/1.1", status: 400, code: "avatarIDUnrecognized"},
		{head: "POST /v1/avatars/" + long + "/load HTTP/1.1", status: 400, code: "avatarIDUnrecognized"},
		{head: "DELETE /v1/avatars/" + long + " HTTP/1.1", status: 400, code: "avatarIDUnrecognized"},
		{head: "POST /v1/avatars//load HTTP/1.1", status: 400},
		{head: "DELETE /v1/avatars//load HTTP/1.1", status: 400},
		{head: "GET /v1/avatars/ HTTP/1.1"},
		{head: "PUT /v1/session HTTP/1.1\r\nContent-Type: application/json", bodyLen: 10 << 20, status: 413, code: "payloadTooLarge"},
		{head: "PUT /v1/session HTTP/1.1\r\nContent-Type: application/json", body: `{"sessionToken":`, status: 400, code: "badRequest"},
		{head: "PUT /v1/session HTTP/1.1\r\nContent-Type: application/json", body: `["x"]`, status: 400, code: "badRequest"},
		{head: "POST /v1/cache/lru?keep=-1 HTTP/1.1", status: 400, code: "badRequest"},
		{head: "GET /v1/health HTTP/1.1\r\nOrigin: http://evil.example", status: 403, code: "forbidden"},
		{head: "DELETE /v1/avatars HTTP/1.1\r\nOrigin: http://evil.example", status: 403, code: "forbidden"},
		{head: "DELETE /v1/avatars/rohan HTTP/1.1\r\nReferer: http://evil.example/page", status: 403, code: "forbidden"},
		{head: "POST /v1/avatars/rohan/load HTTP/1.1\r\nOrigin: null", status: 403, code: "forbidden"},
	}
	for _, tc := range cases {
		status, er := e.raw(tc.head, tc.body, tc.bodyLen)
		if tc.status != 0 && status != tc.status || status/100 != 4 {
			t.Errorf("%q: status %d, want %d", firstLine(tc.head), status, tc.status)
		}
		if tc.code != "" && string(er.Error.Code) != tc.code {
			t.Errorf("%q: code %q, want %q", firstLine(tc.head), er.Error.Code, tc.code)
		}
	}

	var after apitype.List
	e.must(c, "GET", "/v1/avatars", nil, 200, &after)
	if got, want := listIDs(after), listIDs(before); strings.Join(got, ",") != strings.Join(want, ",") || len(after.Loads) != 0 {
		t.Errorf("after the bad requests: %+v, before: %+v", after, before)
	}
	if n := o.Requests(); n != originBefore {
		t.Errorf("bad requests reached the origin: %d requests, %d before", n, originBefore)
	}
	var h apitype.Health
	e.must(c, "GET", "/v1/health", nil, 200, &h)
	p.Stop()
}
