package fetch

import (
	"crypto/x509"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
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
	var e *errs.Error
	if !errors.As(err, &e) || e.Reason != errs.ReasonInsecure || e.Transient || !strings.Contains(e.Hint, "origin.ca_file") {
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
