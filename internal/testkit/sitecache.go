package testkit

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SiteCacheConfFile is deploy/site-cache/nginx.conf, the site cache the
// project ships (docs/fleet.md).
func SiteCacheConfFile() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "deploy", "site-cache", "nginx.conf")
}

// SiteCacheSubst are where the shipped site cache's deployment values go:
// everything else in the file is run as written.
type SiteCacheSubst struct {
	Listen     string // listen's address, for "443"
	OriginURL  string // proxy_pass, for "https://origin.example.com"
	OriginName string // proxy_ssl_name: the name the origin's certificate holds
	Cert, Key  string // this cache's certificate and key
	Trusted    string // the CAs the origin's certificate is checked against
	CacheDir   string // proxy_cache_path
	AccessLog  string
}

// SiteCacheConf is deploy/site-cache/nginx.conf with s's values in place
// of the shipped ones; it fails the test when a shipped value is no longer
// in the file (the file changed: change the substitutions with it).
func SiteCacheConf(t testing.TB, s SiteCacheSubst) string {
	t.Helper()
	b, err := os.ReadFile(SiteCacheConfFile())
	if err != nil {
		t.Fatal(err)
	}
	conf := string(b)
	for _, r := range [][2]string{
		{"proxy_cache_path /var/cache/nginx/assetd ", "proxy_cache_path " + s.CacheDir + " "},
		{"listen 443 ssl;", "listen " + s.Listen + " ssl;"},
		{"/etc/ssl/assetd-site-cache/cert.pem;", s.Cert + ";"},
		{"/etc/ssl/assetd-site-cache/key.pem;", s.Key + ";"},
		{"/etc/ssl/certs/ca-certificates.crt;", s.Trusted + ";"},
		{"proxy_ssl_name               origin.example.com;", "proxy_ssl_name " + s.OriginName + ";"},
		{"proxy_pass https://origin.example.com;", "proxy_pass " + s.OriginURL + ";"},
		{"/var/log/nginx/assetd-site-cache.log", s.AccessLog},
	} {
		if !strings.Contains(conf, r[0]) {
			t.Fatalf("%s no longer has %q: update the tests' substitutions (testkit.SiteCacheConf) with the file", SiteCacheConfFile(), r[0])
		}
		conf = strings.ReplaceAll(conf, r[0], r[1])
	}
	return conf
}

// SiteCache is a running deploy/site-cache/nginx.conf.
type SiteCache struct {
	URL       string // https://127.0.0.1:PORT
	Dir       string
	AccessLog string
	Client    *http.Client // trusts the CA
	Pid       int          // nginx's (one process)
}

// StartSiteCache runs the shipped site cache (SiteCacheConf) with nginx in
// front of origin (an https URL whose certificate ca issued for
// "localhost"), over TLS with a certificate ca issues for 127.0.0.1, until
// the test ends. nginx -t checks it first. Skipped without nginx.
func StartSiteCache(t testing.TB, ca *CA, origin string, limit time.Duration) *SiteCache {
	t.Helper()
	u, err := url.Parse(origin)
	if err != nil || u.Scheme != "https" {
		t.Fatalf("origin %q: want an https URL", origin)
	}
	dir := ShortDir(t)
	cert, key := ca.Issue(t, "site-cache", "127.0.0.1", "localhost")
	sc := &SiteCache{Dir: dir, AccessLog: filepath.Join(dir, "site-cache.log"),
		Client: &http.Client{Timeout: limit, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool}, MaxIdleConnsPerHost: 16}}}
	sc.Pid = RunNginx(t, dir, limit, func(port int) (string, func(<-chan struct{}, *error) error) {
		sc.URL = "https://127.0.0.1:" + strconv.Itoa(port)
		site := SiteCacheConf(t, SiteCacheSubst{
			Listen: fmt.Sprintf("127.0.0.1:%d", port), OriginURL: origin, OriginName: "localhost",
			Cert: cert, Key: key, Trusted: ca.File, CacheDir: filepath.Join(dir, "cache"), AccessLog: sc.AccessLog,
		})
		path := filepath.Join(dir, "site-cache.conf")
		if err := os.WriteFile(path, []byte(site), 0o600); err != nil {
			t.Fatal(err)
		}
		return "include " + path + ";", func(done <-chan struct{}, waitErr *error) error {
			return waitHTTP(sc.Client, sc.URL, done, waitErr, limit)
		}
	})
	t.Cleanup(sc.Client.CloseIdleConnections)
	return sc
}
