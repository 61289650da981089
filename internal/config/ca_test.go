package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a self-signed CA certificate in PEM and parsed.
func testCA(t *testing.T) ([]byte, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "site CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), cert
}

// TestCAFile: origin.ca_file names a PEM bundle whose certificates
// RootCAs trusts besides the system roots; a bad one is refused at its
// key and line, whatever is wrong with it.
func TestCAFile(t *testing.T) {
	caPEM, ca := testCA(t)
	good := write(t, "ca.pem", string(caPEM)+string(caPEM), 0o644)
	c, err := Parse([]byte("[origin]\nurl = \"https://cache.site\"\nca_file = \""+good+"\"\n"), "f.toml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Origin.CAFile != good {
		t.Fatalf("ca_file = %q", c.Origin.CAFile)
	}
	pool, err := c.RootCAs()
	if err != nil || pool == nil {
		t.Fatalf("RootCAs = %v, %v", pool, err)
	}
	if _, err := ca.Verify(x509.VerifyOptions{Roots: pool}); err != nil {
		t.Errorf("the bundle's CA is not trusted: %v", err)
	}
	if pool, err := Default().RootCAs(); pool != nil || err != nil {
		t.Errorf("no ca_file: RootCAs = %v, %v; want nil (the system roots)", pool, err)
	}

	dir := t.TempDir()
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}})
	bad := map[string]string{
		"missing":   filepath.Join(dir, "none.pem"),
		"empty":     write(t, "empty.pem", "", 0o644),
		"not PEM":   write(t, "text.pem", "hello\n", 0o644),
		"a key":     write(t, "key.pem", string(caPEM)+string(keyPEM), 0o644),
		"garbage":   write(t, "bad.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})), 0o644),
		"directory": dir,
		"relative":  "ca.pem",
		"too big":   write(t, "big.pem", string(caPEM)+strings.Repeat("#", maxCAFileBytes), 0o644),
	}
	for name, path := range bad {
		_, err := Parse([]byte("[origin]\n\nca_file = \""+path+"\"\n"), "f.toml")
		var ce *Error
		if !errors.As(err, &ce) || ce.Key != "origin.ca_file" || ce.Line != 3 {
			t.Errorf("%s: %v; want an error at f.toml:3 key origin.ca_file", name, err)
		}
	}

	// A bundle that turns bad after Load is RootCAs' error, naming the key.
	if err := os.WriteFile(good, []byte("gone"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RootCAs(); err == nil || !strings.Contains(err.Error(), "origin.ca_file") {
		t.Errorf("RootCAs of a damaged bundle: %v", err)
	}
}
