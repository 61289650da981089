package fetch

import (
	"bytes"
	"compress/gzip"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-cleanhttp"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/testkit"
	"github.com/assetd/assetd/internal/version"
)

const hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestManifestOK(t *testing.T) {
	o := testkit.NewOrigin(t)
	doc := manifestDoc("rohan", manifest.Asset{Path: "model.splat", Size: 3, SHA256: hexA})
	o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("If-None-Match") == `"v1"` {
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Header().Set("ETag", `"v1"`)
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(doc)
	})
	c := newClient(t, testConfig(o.URL()+"/"))
	res, err := c.Manifest(ctxT(t), "rohan", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.NotModified || res.Manifest == nil || len(res.Manifest.Assets) != 1 || !bytes.Equal(res.Raw, doc) ||
		res.ETag != `"v1"` || res.MaxAge != 300*time.Second || res.URL != o.URL()+"/v1/avatars/rohan/manifest" {
		t.Fatalf("result = %+v", res)
	}
	h := o.Headers()[0]
	if h.Get("X-App-ID") != "app-1" || h.Get("Authorization") != "Bearer "+testToken || h.Get("User-Agent") != version.UserAgent() {
		t.Errorf("origin got headers %v", h)
	}

	res, err = c.Manifest(ctxT(t), "rohan", `"v1"`)
	if err != nil {
		t.Fatal(err)
	}
	if !res.NotModified || res.Manifest != nil || res.ETag != `"v1"` {
		t.Fatalf("revalidation = %+v", res)
	}
}

func TestManifestInvalidIDMakesNoRequest(t *testing.T) {
	o := testkit.NewOrigin(t)
	c := newClient(t, testConfig(o.URL()))
	_, err := c.Manifest(ctxT(t), "../etc", "")
	if !errors.Is(err, &errcode.Error{Code: errcode.AvatarIDUnrecognized, Reason: errcode.ReasonInvalidID}) {
		t.Fatalf("err = %v", err)
	}
	if o.TotalHits() != 0 {
		t.Errorf("%d requests", o.TotalHits())
	}
}

func TestMirrors(t *testing.T) {
	down := testkit.NewOrigin(t)
	down.Handle("/", status(502, "bad gateway"))
	mirror := testkit.NewOrigin(t)
	data := randBytes(5000, 2)
	a := assetOf("model.splat", data)
	doc := manifestDoc("rohan", a)
	mirror.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, _ *http.Request) { w.Write(doc) })
	mirror.AddBlob(data)
	cfg := testConfig(down.URL())
	cfg.Mirrors = []string{mirror.URL()}
	c := newClient(t, cfg)

	res, err := c.Manifest(ctxT(t), "rohan", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(res.URL, mirror.URL()) {
		t.Errorf("URL = %s", res.URL)
	}
	// the default blob URL: the origin first, then the mirror
	sink := newSink(t)
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, sink, nil); err != nil {
		t.Fatal(err)
	}
	if got := down.TotalHits(); got != 2*(cfg.MaxRetries+1) {
		t.Errorf("down origin got %d requests, want %d", got, 2*(cfg.MaxRetries+1))
	}
	// the mirror's manifest URL puts the mirror first
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a, ManifestURL: res.URL}, newSink(t), nil); err != nil {
		t.Fatal(err)
	}
	if got := down.TotalHits(); got != 2*(cfg.MaxRetries+1) {
		t.Errorf("down origin got %d requests after a mirror-first download", got)
	}
	if h := mirror.Headers()[0]; h.Get("Authorization") == "" || h.Get("X-App-ID") == "" {
		t.Errorf("the mirror did not get the origin's headers: %v", h)
	}
	// Both downloads came from the mirror: /metrics tells them apart.
	if s := c.Stats(); s.BytesDownloaded != 2*5000 || s.BytesFromMirrors != 2*5000 {
		t.Errorf("stats %+v: want 10000 bytes, all from the mirror", s)
	}
}

// TestBytesBySiteCacheStatus: a site cache's X-Cache-Status (nginx's
// $upstream_cache_status) sorts the bytes of its answers into hits and
// misses; answers without it count in neither.
func TestBytesBySiteCacheStatus(t *testing.T) {
	o := testkit.NewOrigin(t)
	c := newClient(t, testConfig(o.URL()))
	var want Stats
	for i, status := range []string{"HIT", "MISS", "", "revalidated", "EXPIRED", "STALE", "weird"} {
		data := randBytes(1000+i, uint64(10+i))
		o.Handle("/v1/blobs/sha256/"+digest(data), func(w http.ResponseWriter, r *http.Request) {
			if status != "" {
				w.Header().Set("X-Cache-Status", status)
			}
			o.ServeBlob(w, r, data)
		})
		if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: assetOf("f", data)}, newSink(t), nil); err != nil {
			t.Fatal(err)
		}
		n := uint64(len(data))
		want.BytesDownloaded += n
		switch status {
		case "HIT", "revalidated", "STALE":
			want.BytesCacheHit += n
		case "MISS", "EXPIRED":
			want.BytesCacheMiss += n
		}
	}
	got := c.Stats()
	if got.BytesDownloaded != want.BytesDownloaded || got.BytesCacheHit != want.BytesCacheHit || got.BytesCacheMiss != want.BytesCacheMiss {
		t.Errorf("stats %+v, want bytes %d hit %d miss %d", got, want.BytesDownloaded, want.BytesCacheHit, want.BytesCacheMiss)
	}
}

// TestBytesByOrigin: bytes the origin serves are not the mirror's, though
// a mirror is configured (and shares the origin's host and a prefix).
func TestBytesByOrigin(t *testing.T) {
	o := testkit.NewOrigin(t)
	data := randBytes(3000, 3)
	a := assetOf("model.splat", data)
	o.AddBlob(data)
	cfg := testConfig(o.URL() + "/")
	cfg.Mirrors = []string{o.URL() + "/v1/mirror"}
	c := newClient(t, cfg)
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, newSink(t), nil); err != nil {
		t.Fatal(err)
	}
	if s := c.Stats(); s.BytesDownloaded != 3000 || s.BytesFromMirrors != 0 {
		t.Errorf("stats %+v: want 3000 bytes, none from a mirror", s)
	}
}

func gzipped(t *testing.T, b []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return buf.Bytes()
}

func TestHostileManifests(t *testing.T) {
	asset := func(path, size, sum string) string {
		return `{"schema":1,"avatarId":"rohan","version":"1","assets":[{"path":` + path + `,"size":` + size + `,"sha256":"` + sum + `"}]}`
	}
	// 256 MiB of JSON whitespace in about 256 KiB: gzip members concatenate.
	spaces := gzipped(t, bytes.Repeat([]byte(" "), 1<<20))
	bomb := append(gzipped(t, []byte(asset(`"a"`, "1", hexA))), bytes.Repeat(spaces, 256)...)
	tests := []struct {
		name    string
		body    []byte
		gzip    bool
		rawGzip bool // a transport that does not undo gzip itself
	}{
		{name: "dotdot", body: []byte(asset(`"../etc/passwd"`, "1", hexA))},
		{name: "absolute", body: []byte(asset(`"/etc/passwd"`, "1", hexA))},
		{name: "duplicate", body: []byte(`{"schema":1,"avatarId":"rohan","version":"1","assets":[{"path":"a","size":1,"sha256":"` + hexA + `"},{"path":"a","size":1,"sha256":"` + hexA + `"}]}`)},
		{name: "negative size", body: []byte(asset(`"a"`, "-1", hexA))},
		{name: "enormous size", body: []byte(asset(`"a"`, "4611686018427387904", hexA))},
		{name: "bad hex", body: []byte(asset(`"a"`, "1", strings.Repeat("g", 64)))},
		{name: "2 MiB", body: append([]byte(asset(`"a"`, "1", hexA)), bytes.Repeat([]byte(" "), 2<<20)...)},
		{name: "gzip bomb", body: bomb, gzip: true},
		{name: "gzip bomb, raw transport", body: bomb, gzip: true, rawGzip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := testkit.NewOrigin(t)
			o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, _ *http.Request) {
				if tt.gzip {
					w.Header().Set("Content-Encoding", "gzip")
				}
				w.Write(tt.body)
			})
			cfg := testConfig(o.URL())
			if tt.rawGzip {
				tr := cleanhttp.DefaultPooledTransport()
				tr.DisableCompression = true
				cfg.Transport = tr
			}
			c := newClient(t, cfg)
			_, err := c.Manifest(ctxT(t), "rohan", "")
			if !errors.Is(err, &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonInvalidManifest}) || errs.IsTransient(err) {
				t.Fatalf("err = %v, want a final invalidManifest", err)
			}
			if n := o.TotalHits(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestSignedManifest(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	doc := manifestDoc("rohan", manifest.Asset{Path: "a", Size: 1, SHA256: hexA})
	signed, err := manifest.Sign(doc, "k1", priv)
	if err != nil {
		t.Fatal(err)
	}
	o := testkit.NewOrigin(t)
	o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, _ *http.Request) { w.Write(signed) })
	o.Handle("/v1/avatars/mei/manifest", func(w http.ResponseWriter, _ *http.Request) {
		w.Write(manifestDoc("mei", manifest.Asset{Path: "a", Size: 1, SHA256: hexA}))
	})
	cfg := testConfig(o.URL())
	cfg.TrustedKeys = []ed25519.PublicKey{pub}
	c := newClient(t, cfg)
	if _, err := c.Manifest(ctxT(t), "rohan", ""); err != nil {
		t.Fatalf("signed: %v", err)
	}
	_, err = c.Manifest(ctxT(t), "mei", "")
	if !errors.Is(err, &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonBadSignature}) {
		t.Fatalf("unsigned: %v", err)
	}
	if n := o.Hits("/v1/avatars/mei/manifest"); n != 1 {
		t.Errorf("unsigned manifest fetched %d times", n)
	}
}

// TestSignedManifestDuplicateKey: a signed manifest with a second
// "assets" member placed before the signed one is refused: the signature
// covers one document, and what the load uses must be that document.
// Before the fix it verified (the signed bytes were decoded last key wins)
// while Parse kept the first copy's url, one the signer never wrote.
func TestSignedManifestDuplicateKey(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	signed, err := manifest.Sign(manifestDoc("rohan", manifest.Asset{Path: "a", Size: 1, SHA256: hexA}), "k1", priv)
	if err != nil {
		t.Fatal(err)
	}
	evil := `"assets":[{"path":"a","size":1,"sha256":"` + hexA + `","url":"http://evil.example/a"}],`
	attacks := map[string][]byte{
		"assets before":   []byte("{" + evil + string(signed[1:])),
		"assets after":    []byte(strings.TrimSuffix(string(signed), "}") + "," + strings.TrimSuffix(evil, ",") + "}"),
		"nested asset":    []byte(strings.Replace(string(signed), `"path":"a"`, `"url":"http://evil.example/a","path":"a","url":null`, 1)),
		"signature twice": []byte(strings.Replace(string(signed), `"signature":`, `"signature":{"ed25519":"x"},"signature":`, 1)),
	}
	for name, doc := range attacks {
		t.Run(name, func(t *testing.T) {
			o := testkit.NewOrigin(t)
			o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, _ *http.Request) { w.Write(doc) })
			cfg := testConfig(o.URL())
			cfg.TrustedKeys = []ed25519.PublicKey{pub}
			c := newClient(t, cfg)
			res, err := c.Manifest(ctxT(t), "rohan", "")
			if err == nil {
				t.Fatalf("accepted; assets %+v", res.Manifest.Assets)
			}
			if !errors.Is(err, &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonInvalidManifest}) || errs.IsTransient(err) {
				t.Fatalf("err = %v, want a final invalidManifest", err)
			}
			if !strings.Contains(err.Error(), "twice") {
				t.Errorf("err = %v, want it to name the repeated member", err)
			}
		})
	}
}

func TestRedirects(t *testing.T) {
	o := testkit.NewOrigin(t)
	o.Handle("/v1/avatars/loop/manifest", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, r.URL.Path, http.StatusFound)
	})
	o.Handle("/v1/avatars/file/manifest", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "file:///etc/passwd", http.StatusFound)
	})
	o.Handle("/v1/avatars/insecure/manifest", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.com/x", http.StatusFound)
	})
	c := newClient(t, testConfig(o.URL()))
	tests := []struct {
		id       string
		reason   string
		requests int
	}{
		{"loop", errcode.ReasonTooManyRedirects, MaxRedirects + 1},
		{"file", errcode.ReasonInsecure, 1},
		{"insecure", errcode.ReasonInsecure, 1},
	}
	for _, tt := range tests {
		_, err := c.Manifest(ctxT(t), tt.id, "")
		e := errs.From(err)
		if e.Code != errcode.FailedToFetchAvatarMetadata || e.Reason != tt.reason || e.Transient {
			t.Errorf("%s: err = %v (reason %q transient %v)", tt.id, err, e.Reason, e.Transient)
		}
		if n := o.Hits("/v1/avatars/" + tt.id + "/manifest"); n != tt.requests {
			t.Errorf("%s: %d requests, want %d", tt.id, n, tt.requests)
		}
	}
}

func TestInsecureOrigins(t *testing.T) {
	for _, u := range []string{"http://example.com", "file:///srv", "ftp://x", "https://user:pw@x", "https://x/?q=1"} {
		_, err := New(Config{BaseURL: u})
		if err == nil {
			t.Errorf("New(%s) succeeded", u)
		}
	}
	for _, u := range []string{"https://example.com/base", "http://127.0.0.1:8080", "http://localhost", "http://[::1]:1"} {
		if _, err := New(Config{BaseURL: u}); err != nil {
			t.Errorf("New(%s): %v", u, err)
		}
	}
	if _, err := New(Config{BaseURL: "http://example.com", AllowInsecure: true}); err != nil {
		t.Errorf("AllowInsecure: %v", err)
	}
	c := newClient(t, testConfig("https://example.com"))
	a := assetOf("a", []byte("x"))
	a.URL = "http://cdn.example.com/x"
	err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, newSink(t), nil)
	if !errors.Is(err, &errcode.Error{Code: errcode.FailedToDownloadAvatarAssets, Reason: errcode.ReasonInsecure}) {
		t.Errorf("http asset URL: %v", err)
	}
	c = newClient(t, Config{})
	if _, err := c.Manifest(ctxT(t), "rohan", ""); !errors.Is(err, &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Reason: errcode.ReasonNoOrigin}) {
		t.Errorf("no origin: %v", err)
	}
}

// TestAuthOnlyToOrigin: a CDN named by an asset url, or reached by a
// redirect, never gets X-App-ID or Authorization.
func TestAuthOnlyToOrigin(t *testing.T) {
	o := testkit.NewOrigin(t)
	cdn := testkit.NewOrigin(t)
	data := randBytes(3000, 3)
	path := cdn.AddBlob(data)
	o.Handle("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, cdn.URL()+path, http.StatusFound)
	})
	c := newClient(t, testConfig(o.URL()))
	for _, u := range []string{cdn.URL() + path, "/redirect"} {
		a := assetOf("a", data)
		a.URL = u
		if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, newSink(t), nil); err != nil {
			t.Fatal(err)
		}
	}
	if cdn.TotalHits() != 2 {
		t.Fatalf("cdn got %d requests", cdn.TotalHits())
	}
	for _, h := range cdn.Headers() {
		if h.Get("Authorization") != "" || h.Get("X-App-ID") != "" {
			t.Errorf("the CDN got origin headers: %v", h)
		}
	}
	if h := o.Headers()[0]; h.Get("Authorization") != "Bearer "+testToken || h.Get("X-App-ID") != "app-1" {
		t.Errorf("the origin did not get its headers: %v", h)
	}
}
