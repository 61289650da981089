package testkit

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// get requests path from o with the given headers ("Name: value").
func get(t *testing.T, o *Origin, path string, headers ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, o.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

// The manifest: ETag, max-age as set, 304 to its ETag, signed when a
// signer is set, 404 once withdrawn; each counted.
func TestOriginManifest(t *testing.T) {
	a := SeededAvatar("rohan", 1, 10)
	o := NewOrigin(t, a)
	const path = "/v1/avatars/rohan/manifest"
	resp, body := get(t, o, path)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") != `"1"` || resp.Header.Get("Cache-Control") != "max-age=3600" ||
		!bytes.Contains(body, []byte(a.Assets[0].SHA256)) {
		t.Fatalf("manifest: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	o.SetMaxAge(0)
	o.SetSigner(func(doc []byte) ([]byte, error) { return append([]byte("signed:"), doc...), nil })
	if resp, body := get(t, o, path); resp.Header.Get("Cache-Control") != "" || !bytes.HasPrefix(body, []byte("signed:{")) {
		t.Errorf("with max-age 0 and a signer: %v %s", resp.Header, body)
	}
	if resp, _ := get(t, o, path, `If-None-Match: "1"`); resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d", resp.StatusCode)
	}
	o.Withdraw("rohan")
	if resp, body := get(t, o, path); resp.StatusCode != 404 || !bytes.Contains(body, []byte("avatarIDUnrecognized")) {
		t.Errorf("withdrawn: %d %s", resp.StatusCode, body)
	}
	if o.ManifestGets("rohan") != 4 || o.NotModified("rohan") != 1 || o.Hits(path) != 4 {
		t.Errorf("counted %d manifests, %d 304s, %d hits", o.ManifestGets("rohan"), o.NotModified("rohan"), o.Hits(path))
	}
}

// Blobs: whole and from a Range; corrupted, failed and held on demand.
func TestOriginBlob(t *testing.T) {
	o := NewOrigin(t)
	data := SeededAvatar("x", 2, 100<<10).Assets[0].Data
	path, d := o.AddBlob(data), Sum(data)
	if _, b := get(t, o, path); !bytes.Equal(b, data) {
		t.Fatal("whole blob differs")
	}
	resp, b := get(t, o, path, "Range: bytes=1000-")
	if resp.StatusCode != 206 || !bytes.Equal(b, data[1000:]) || o.Ranged.Load() != 1 {
		t.Errorf("ranged: %d, %d bytes", resp.StatusCode, len(b))
	}
	o.SetCorrupt(d, true)
	if _, b := get(t, o, path); len(b) != len(data) || Sum(b) == d {
		t.Error("a corrupted blob has its digest")
	}
	o.SetCorrupt(d, false)
	o.SetBlobStatus(503)
	if resp, _ := get(t, o, path); resp.StatusCode != 503 {
		t.Errorf("blob status: %d", resp.StatusCode)
	}
	o.SetBlobStatus(0)
	o.SetStatus(502)
	if resp, _ := get(t, o, path); resp.StatusCode != 502 || resp.Header.Get("Content-Type") != "text/html" {
		t.Errorf("status: %d %v", resp.StatusCode, resp.Header)
	}
	o.SetStatus(0)
	if o.BlobGets(d) != 5 || o.TotalBlobGets() != 5 || o.SentWhenIdle() != int64(3*len(data)-1000) {
		t.Errorf("counted %d gets, %d bytes sent", o.BlobGets(d), o.SentWhenIdle())
	}

	h := o.HoldBlobs(0)
	done := make(chan []byte)
	go func() {
		var b []byte
		if resp, err := http.Get(o.URL() + path); err == nil {
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
		}
		done <- b
	}()
	<-h.Sent
	if n := o.Inflight(); n != 1 {
		t.Errorf("%d bodies in flight while held", n)
	}
	h.Free()
	if b := <-done; !bytes.Equal(b, data) {
		t.Error("the held blob differs")
	}
}

// A token is required of every request; a Handle handler answers its
// path instead, and is counted.
func TestOriginTokenAndHandle(t *testing.T) {
	o := NewOrigin(t, SeededAvatar("rohan", 3, 10))
	o.SetToken("secret")
	if resp, _ := get(t, o, "/v1/avatars/rohan/manifest", "Authorization: Bearer wrong"); resp.StatusCode != 401 {
		t.Errorf("wrong token: %d", resp.StatusCode)
	}
	if resp, _ := get(t, o, "/v1/avatars/rohan/manifest", "Authorization: Bearer secret"); resp.StatusCode != 200 {
		t.Errorf("right token: %d", resp.StatusCode)
	}
	o.Handle("/odd", func(w http.ResponseWriter, r *http.Request) { o.ServeBlob(w, r, []byte("odd")) })
	if _, b := get(t, o, "/odd"); string(b) != "odd" {
		t.Errorf("handled: %q", b)
	}
	if hs := o.Headers(); o.TotalHits() != 3 || o.Hits("/odd") != 1 || len(hs) != 3 || hs[0].Get("Authorization") != "Bearer wrong" {
		t.Errorf("%d hits, headers %v", o.TotalHits(), hs)
	}
}
