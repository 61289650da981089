package fetch

import (
	"bytes"
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/testkit"
)

// TestRootCAs: an https origin whose certificate a private CA signed (a
// site cache) is trusted with RootCAs holding that CA (origin.ca_file),
// and refused without it: not transient (one request, no retries), reason
// insecureOrigin, with a hint naming origin.ca_file.
func TestRootCAs(t *testing.T) {
	doc := manifestDoc("rohan", manifest.Asset{Path: "model.splat", Size: 3, SHA256: hexA})
	n := 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		w.Header().Set("ETag", `"v1"`)
		w.Write(doc)
	}))
	t.Cleanup(srv.Close)

	cfg := testConfig(srv.URL + "/")
	plain := newClient(t, cfg)
	_, err := plain.Manifest(ctxT(t), "rohan", "")
	var e *errcode.Error
	if !errors.As(err, &e) || e.Reason != errcode.ReasonInsecure || e.Transient || !strings.Contains(e.Hint, "origin.ca_file") {
		t.Fatalf("without the CA: %#v", err)
	}
	if n != 0 {
		t.Errorf("the handler ran %d times without a trusted certificate", n)
	}
	if s := plain.Stats(); s.Requests != 1 || s.Retries != 0 {
		t.Errorf("without the CA: %+v; an untrusted certificate is not retried", s)
	}

	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cfg.RootCAs = pool
	res, err := newClient(t, cfg).Manifest(ctxT(t), "rohan", "")
	if err != nil {
		t.Fatalf("with the CA: %v", err)
	}
	if res.Manifest == nil || res.ETag != `"v1"` || n != 1 {
		t.Fatalf("with the CA: %+v, %d requests", res, n)
	}
}

// TestUntrustedCertificateFailsOver: a base URL whose certificate is not
// trusted (a site cache's expired or its CA missing) is not retried, but
// the next mirror is tried, for the manifest and the blob.
func TestUntrustedCertificateFailsOver(t *testing.T) {
	untrusted := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the untrusted server answered %s", r.URL.Path)
	}))
	t.Cleanup(untrusted.Close)
	data := randBytes(4096, 1)
	a := assetOf("model.bin", data)
	o := testkit.NewOrigin(t)
	o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, r *http.Request) {
		w.Write(manifestDoc("rohan", a))
	})
	o.Handle("/v1/blobs/sha256/"+a.SHA256, func(w http.ResponseWriter, r *http.Request) {
		o.ServeBlob(w, r, data)
	})
	cfg := testConfig(untrusted.URL + "/")
	cfg.Mirrors = []string{o.URL() + "/"}
	c := newClient(t, cfg)
	res, err := c.Manifest(ctxT(t), "rohan", "")
	if err != nil || res.Manifest == nil {
		t.Fatalf("manifest: %v", err)
	}
	sink := newSink(t)
	if err := c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: res.Manifest.Assets[0]}, sink, nil); err != nil {
		t.Fatalf("blob: %v", err)
	}
	if !bytes.Equal(sink.bytes(t), data) {
		t.Error("the blob is not the mirror's")
	}
	if s := c.Stats(); s.Retries != 0 {
		t.Errorf("%+v: an untrusted certificate is not retried", s)
	}
}
