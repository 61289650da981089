package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
)

// maxCAFileBytes bounds origin.ca_file: a site's bundle is a few
// certificates, a few KiB each.
const maxCAFileBytes = 1 << 20

// ReadCAFile reads a PEM bundle of CA certificates: every block must be a
// CERTIFICATE that parses, and there must be at least one. Only a regular
// file is read (not a FIFO or device that could block a reload), at most
// 1 MiB.
func ReadCAFile(path string) ([]*x509.Certificate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA bundle: %v", unwrapPath(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA bundle: %v", unwrapPath(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, errors.New("the CA bundle must be a regular file")
	}
	data, err := io.ReadAll(io.LimitReader(f, maxCAFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the CA bundle: %v", unwrapPath(err))
	}
	if len(data) > maxCAFileBytes {
		return nil, fmt.Errorf("the CA bundle is larger than %d bytes", maxCAFileBytes)
	}
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q, not a CERTIFICATE", n, b.Type)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %v", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block in the CA bundle")
	}
	return certs, nil
}

// RootCAs is the pool a TLS connection to the origin and its mirrors
// trusts: the system roots plus origin.ca_file's certificates; nil when
// ca_file is empty (the system roots alone). The file is read on each
// call.
func (c *Config) RootCAs() (*x509.CertPool, error) {
	if c.Origin.CAFile == "" {
		return nil, nil
	}
	certs, err := ReadCAFile(c.Origin.CAFile)
	if err != nil {
		return nil, &Error{File: c.File, Key: "origin.ca_file", Msg: err.Error()}
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool() // no system roots here: the bundle alone
	}
	for _, ca := range certs {
		pool.AddCert(ca)
	}
	return pool, nil
}
