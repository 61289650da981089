package origin

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/publish"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const blobData = "0123456789abcdefghij"

type fixture struct {
	root, digest string
	manifest     []byte
}

// newTree publishes one avatar "rohan" with one asset and plants a secret
// next to the tree and a symlink to it inside.
func newTree(t *testing.T) fixture {
	t.Helper()
	base := t.TempDir()
	src := filepath.Join(base, "src")
	if err := os.MkdirAll(filepath.Join(src, "rohan"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"VERSION": "1", "model.splat": blobData} {
		if err := os.WriteFile(filepath.Join(src, "rohan", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(base, "out")
	if _, err := publish.Publish(context.Background(), src, root, publish.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A planted symlink named like a blob must not lead out of the root.
	sum := sha256.Sum256([]byte("secret"))
	if err := os.Symlink(filepath.Join(base, "secret"), filepath.Join(root, "v1", "blobs", "sha256", hex.EncodeToString(sum[:]))); err != nil {
		t.Fatal(err)
	}
	// A folder where a manifest should be is not listed.
	if err := os.MkdirAll(filepath.Join(root, "v1", "avatars", "dir", "manifest"), 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(publish.ManifestPath("rohan"))))
	if err != nil {
		t.Fatal(err)
	}
	sum = sha256.Sum256([]byte(blobData))
	return fixture{root: root, digest: hex.EncodeToString(sum[:]), manifest: raw}
}

func start(t *testing.T, opts Options) *httptest.Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts
}

type answer struct {
	status int
	header http.Header
	body   string
}

// get sends path exactly as written (no client-side cleaning).
func get(t *testing.T, ts *httptest.Server, method, path string, header map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, string(b)}
}

func code(t *testing.T, a answer) errcode.Code {
	t.Helper()
	var body struct {
		Code    errcode.Code `json:"code"`
		Message string       `json:"message"`
	}
	if err := json.Unmarshal([]byte(a.body), &body); err != nil || body.Message == "" {
		t.Fatalf("error body %q is not {code, message}: %v", a.body, err)
	}
	return body.Code
}

func TestManifest(t *testing.T) {
	fx := newTree(t)
	ts := start(t, Options{Root: fx.root})
	a := get(t, ts, "GET", "/v1/avatars/rohan/manifest", nil)
	if a.status != 200 || a.body != string(fx.manifest) {
		t.Fatalf("status %d body %q", a.status, a.body)
	}
	if _, err := manifest.Parse([]byte(a.body), "rohan", 0); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(fx.manifest)
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	if got := a.header.Get("ETag"); got != etag {
		t.Errorf("ETag %s, want %s", got, etag)
	}
	if got := a.header.Get("Cache-Control"); got != ManifestCacheControl {
		t.Errorf("Cache-Control %q", got)
	}
	if got := a.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	if a := get(t, ts, "GET", "/v1/avatars/rohan/manifest", map[string]string{"If-None-Match": etag}); a.status != 304 || a.body != "" {
		t.Errorf("If-None-Match: status %d body %q, want 304", a.status, a.body)
	}
	if a := get(t, ts, "GET", "/v1/avatars/rohan/manifest", map[string]string{"If-None-Match": `"other"`}); a.status != 200 {
		t.Errorf("stale If-None-Match: status %d, want 200", a.status)
	}
	if a := get(t, ts, "HEAD", "/v1/avatars/rohan/manifest", nil); a.status != 200 || a.body != "" || a.header.Get("ETag") != etag {
		t.Errorf("HEAD: %d %q %v", a.status, a.body, a.header)
	}
}

func TestBlob(t *testing.T) {
	fx := newTree(t)
	ts := start(t, Options{Root: fx.root})
	path := "/v1/blobs/sha256/" + fx.digest
	a := get(t, ts, "GET", path, nil)
	if a.status != 200 || a.body != blobData {
		t.Fatalf("status %d body %q", a.status, a.body)
	}
	if got := a.header.Get("ETag"); got != `"`+fx.digest+`"` {
		t.Errorf("ETag %s", got)
	}
	if got := a.header.Get("Cache-Control"); got != BlobCacheControl {
		t.Errorf("Cache-Control %q", got)
	}
	if got := a.header.Get("Accept-Ranges"); got != "bytes" {
		t.Errorf("Accept-Ranges %q", got)
	}

	cases := []struct {
		name   string
		header map[string]string
		status int
		body   string
	}{
		{"range", map[string]string{"Range": "bytes=3-7"}, 206, blobData[3:8]},
		{"open range", map[string]string{"Range": "bytes=15-"}, 206, blobData[15:]},
		{"suffix range", map[string]string{"Range": "bytes=-4"}, 206, blobData[16:]},
		{"unsatisfiable", map[string]string{"Range": "bytes=20-"}, 416, ""},
		{"if-none-match", map[string]string{"If-None-Match": `"` + fx.digest + `"`}, 304, ""},
		{"if-range match", map[string]string{"Range": "bytes=10-", "If-Range": `"` + fx.digest + `"`}, 206, blobData[10:]},
		{"if-range mismatch", map[string]string{"Range": "bytes=10-", "If-Range": `"x"`}, 200, blobData},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := get(t, ts, "GET", path, tc.header)
			if a.status != tc.status || (tc.status != 416 && a.body != tc.body) {
				t.Errorf("status %d body %q, want %d %q", a.status, a.body, tc.status, tc.body)
			}
			if tc.status == 206 && !strings.HasPrefix(a.header.Get("Content-Range"), "bytes ") {
				t.Errorf("Content-Range %q", a.header.Get("Content-Range"))
			}
			if tc.status == 416 && a.header.Get("Content-Range") != "bytes */20" {
				t.Errorf("416 Content-Range %q, want bytes */20", a.header.Get("Content-Range"))
			}
		})
	}
}

func TestNotFoundAndTraversal(t *testing.T) {
	fx := newTree(t)
	ts := start(t, Options{Root: fx.root})
	secret := sha256.Sum256([]byte("secret"))
	cases := []struct {
		path   string
		status int
		code   errcode.Code
	}{
		{"/v1/avatars/nobody/manifest", 404, errcode.AvatarIDUnrecognized},
		{"/v1/avatars/.hidden/manifest", 404, errcode.AvatarIDUnrecognized},
		{"/v1/avatars//manifest", 404, errcode.AvatarIDUnrecognized},
		{"/v1/avatars/../manifest", 404, errcode.AvatarIDUnrecognized},
		{"/v1/avatars/dir/manifest", 404, errcode.AvatarIDUnrecognized},
		{"/v1/avatars/..%2F..%2Fsecret/manifest", 404, errcode.NotFound},
		{"/v1/avatars/%2e%2e/manifest", 404, errcode.AvatarIDUnrecognized},
		{"/v1/avatars/rohan/", 404, errcode.NotFound},
		{"/v1/avatars/", 404, errcode.NotFound},
		{"/v1/blobs/sha256/" + strings.Repeat("0", 64), 404, errcode.FailedToDownloadAvatarAssets},
		{"/v1/blobs/sha256/" + strings.ToUpper(fx.digest), 404, errcode.FailedToDownloadAvatarAssets},
		{"/v1/blobs/sha256/" + hex.EncodeToString(secret[:]), 404, errcode.FailedToDownloadAvatarAssets},
		{"/v1/blobs/sha256/", 404, errcode.FailedToDownloadAvatarAssets},
		{"/v1/blobs/sha256/../../x", 404, errcode.FailedToDownloadAvatarAssets},
		{"/v1/blobs/sha256/../../../secret", 404, errcode.FailedToDownloadAvatarAssets},
		{"/v1/blobs/sha256/..%2F..%2F..%2Fsecret", 404, errcode.FailedToDownloadAvatarAssets},
		{"/v1/blobs/sha256/%2e%2e/%2e%2e/%2e%2e/secret", 404, errcode.FailedToDownloadAvatarAssets},
		{"/v1/blobs/sha256/" + fx.digest + "/", 404, errcode.FailedToDownloadAvatarAssets},
		{"/v1/blobs/", 404, errcode.NotFound},
		{"/v1/", 404, errcode.NotFound},
		{"/", 404, errcode.NotFound},
		{"/../secret", 404, errcode.NotFound},
		{"/v1/blobs/sha256/../../../out/v1/avatars/rohan/manifest", 404, errcode.FailedToDownloadAvatarAssets},
	}
	for _, tc := range cases {
		a := get(t, ts, "GET", tc.path, nil)
		if a.status != tc.status {
			t.Errorf("%s: status %d, want %d (body %q)", tc.path, a.status, tc.status, a.body)
			continue
		}
		if got := code(t, a); got != tc.code {
			t.Errorf("%s: code %s, want %s", tc.path, got, tc.code)
		}
		if strings.Contains(a.body, "secret\n") || a.body == "secret" {
			t.Errorf("%s leaked the secret", tc.path)
		}
	}
	if a := get(t, ts, "POST", "/v1/avatars/rohan/manifest", nil); a.status != 405 || a.header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d, Allow %q", a.status, a.header.Get("Allow"))
	}
}

func TestAuth(t *testing.T) {
	fx := newTree(t)
	ts := start(t, Options{Root: fx.root, AppIDs: []string{"app-1"}, Tokens: []string{"tok-good"}})
	cases := []struct {
		name   string
		header map[string]string
		status int
		code   errcode.Code
	}{
		{"no app id", map[string]string{"Authorization": "Bearer tok-good"}, 403, errcode.AppIDUnrecognized},
		{"unknown app id", map[string]string{"X-App-ID": "app-2", "Authorization": "Bearer tok-good"}, 403, errcode.AppIDUnrecognized},
		{"no token", map[string]string{"X-App-ID": "app-1"}, 401, errcode.SessionTokenExpired},
		{"not bearer", map[string]string{"X-App-ID": "app-1", "Authorization": "Basic dG9rLWdvb2Q="}, 401, errcode.SessionTokenExpired},
		{"empty bearer", map[string]string{"X-App-ID": "app-1", "Authorization": "Bearer "}, 401, errcode.SessionTokenExpired},
		{"unknown token", map[string]string{"X-App-ID": "app-1", "Authorization": "Bearer tok-bad"}, 403, errcode.SessionTokenInvalid},
		{"good", map[string]string{"X-App-ID": "app-1", "Authorization": "Bearer tok-good"}, 200, ""},
		{"scheme case", map[string]string{"X-App-ID": "app-1", "Authorization": "bearer tok-good"}, 200, ""},
	}
	for _, path := range []string{"/v1/avatars/rohan/manifest", "/v1/blobs/sha256/" + fx.digest} {
		for _, tc := range cases {
			a := get(t, ts, "GET", path, tc.header)
			if a.status != tc.status {
				t.Errorf("%s %s: status %d, want %d", path, tc.name, a.status, tc.status)
				continue
			}
			if tc.code != "" {
				if got := code(t, a); got != tc.code {
					t.Errorf("%s %s: code %s, want %s", path, tc.name, got, tc.code)
				}
				if strings.Contains(a.body, "tok-") {
					t.Errorf("%s %s: body echoes a token: %s", path, tc.name, a.body)
				}
			}
			if tc.status == 401 && a.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s %s: 401 without WWW-Authenticate", path, tc.name)
			}
		}
	}
	// Unknown avatars are not revealed before authentication.
	if a := get(t, ts, "GET", "/v1/avatars/nobody/manifest", nil); a.status != 403 {
		t.Errorf("unauthenticated unknown avatar: %d, want 403", a.status)
	}
}

func TestServeShutsDownGracefully(t *testing.T) {
	fx := newTree(t)
	s, err := New(Options{Root: fx.root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()

	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + ln.Addr().String() + "/v1/blobs/sha256/" + fx.digest)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != blobData {
		t.Fatalf("body %q", b)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve after shutdown: %v", err)
	}
	if _, err := client.Get("http://" + ln.Addr().String() + "/"); err == nil {
		t.Error("still answering after shutdown")
	}
}

func TestReadList(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ids")
	if err := os.WriteFile(p, []byte("# app IDs\napp-1\n\n  app-2  \n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := ReadList(p)
	if err != nil || len(got) != 2 || got[0] != "app-1" || got[1] != "app-2" {
		t.Errorf("ReadList = %q, %v", got, err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("# nothing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadList(empty); err == nil {
		t.Error("an empty list was accepted")
	}
}

// TestRangeCap: a Range of more than MaxRanges ranges is answered 200 with
// the whole blob, not a multipart answer many times the blob's size; up
// to MaxRanges are served as asked.
func TestRangeCap(t *testing.T) {
	base := t.TempDir()
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	if err := os.MkdirAll(filepath.Join(base, "src", "big"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "src", "big", "a.bin"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "out")
	if _, err := publish.Publish(context.Background(), filepath.Join(base, "src"), root, publish.Options{Version: "1"}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	ts := start(t, Options{Root: root})
	path := "/v1/blobs/sha256/" + hex.EncodeToString(sum[:])
	ranges := func(n int) string { return "bytes=" + strings.TrimSuffix(strings.Repeat("0-0,", n), ",") }

	a := get(t, ts, "GET", path, map[string]string{"Range": ranges(15000)})
	if a.status != 200 || a.body != string(data) {
		t.Errorf("15000 ranges: status %d, %d bytes; want 200 and the blob's %d", a.status, len(a.body), len(data))
	}
	a = get(t, ts, "GET", path, map[string]string{"Range": ranges(MaxRanges + 1)})
	if a.status != 200 || len(a.body) != len(data) {
		t.Errorf("%d ranges: status %d, %d bytes; want 200 and the whole blob", MaxRanges+1, a.status, len(a.body))
	}
	a = get(t, ts, "GET", path, map[string]string{"Range": "bytes=0-0,2-2,4-4"})
	if a.status != 206 || !strings.HasPrefix(a.header.Get("Content-Type"), "multipart/byteranges") {
		t.Errorf("3 ranges: status %d %s, want 206 multipart", a.status, a.header.Get("Content-Type"))
	}
	a = get(t, ts, "GET", path, map[string]string{"Range": ranges(MaxRanges)})
	if a.status != 206 {
		t.Errorf("%d ranges: status %d, want 206", MaxRanges, a.status)
	}
}
