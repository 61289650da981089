package fetch

import (
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-cleanhttp"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/version"
)

// Defaults of docs/config.md, used where a Config field is zero.
const (
	DefaultRetryWaitMin           = 250 * time.Millisecond
	DefaultRetryWaitMax           = 30 * time.Second
	DefaultAttemptTimeout         = 60 * time.Second
	DefaultStallWindow            = 15 * time.Second
	DefaultStallMinBytesPerSecond = 1024
	DefaultConcurrency            = 4
	DefaultMaxHashRetries         = 2
)

// MaxRedirects is the most redirects one request follows (origin protocol).
const MaxRedirects = 5

const (
	errorBodyLimit = 64 << 10           // bytes of an error answer read
	copyBufferSize = 256 << 10          // one read of a blob body
	pumpChunk      = 2 * copyBufferSize // one hand-off of a large body (copy.go)
	pumpBuffers    = 4                  // chunks a large body's pump holds: 2 MiB
)

// Config configures a Client. Zero durations and limits take the defaults
// of docs/config.md; see New.
type Config struct {
	BaseURL string        // origin.url
	Mirrors []string      // tried in order when BaseURL fails (manifest and default blob URLs)
	AppID   string        // sent as X-App-ID to the origin and its mirrors only
	Token   func() string // current session token, "" for none; read per request
	// TokenProblem says why origin.session_token_file could not be read,
	// "" when it could (nil: never). An account answer to a request sent
	// without a token then names this cause (reason tokenFileUnreadable).
	TokenProblem  func() string
	AllowInsecure bool // plain http to non-loopback hosts
	// AllowLocalTargets lets URLs the origin names reach loopback and
	// link-local addresses (fetch.allow_local_targets); see local.go.
	AllowLocalTargets bool
	TrustedKeys       []ed25519.PublicKey
	// RootCAs are the certificate authorities this Client's own transport
	// trusts (origin.ca_file: the system roots and a site CA); nil = the
	// system roots. A Transport given below keeps its own.
	RootCAs *x509.CertPool

	RequestsPerSecond float64 // per host, every attempt; <= 0 = unlimited
	Burst             int     // < 1 = 1
	BytesPerSecond    int64   // 0 = unlimited, shared by all downloads of this Client
	Concurrency       int     // blob downloads at once; 0 = 4

	MaxRetries             int               // retries after the first attempt; < 0 = none
	RetryWaitMin           time.Duration     // 0 = 250ms
	RetryWaitMax           time.Duration     // 0 = 30s; a longer Retry-After ends the retries
	AttemptTimeout         time.Duration     // 0 = 60s: headers, then body idle time
	StallWindow            time.Duration     // 0 = 15s
	StallMinBytesPerSecond int64             // 0 = 1024; < 0 disables the stall watchdog
	MaxAssetBytes          int64             // 0 = manifest.DefaultMaxAssetBytes
	MaxHashRetries         int               // re-downloads after size/hash mismatch; 0 = 2, < 0 = none
	UserAgent              string            // "" = version.UserAgent()
	Logger                 *slog.Logger      // nil = discard
	Transport              http.RoundTripper // nil = a cleanhttp pooled transport honouring HTTP(S)_PROXY/NO_PROXY
	// Proxy and Resolver configure the Client's own transport (Transport
	// nil): the proxy of a request (nil = HTTP(S)_PROXY/NO_PROXY from the
	// environment) and the resolver of its dialer and of the local-target
	// check through a proxy (nil = net.DefaultResolver). A Transport given
	// above dials as it likes: only the URL checks apply to it.
	Proxy    func(*http.Request) (*url.URL, error)
	Resolver *net.Resolver
}

// Client fetches manifests and blobs from one origin and its mirrors. It is
// safe for concurrent use.
type Client struct {
	cfg   Config
	bases []*url.URL // BaseURL, then Mirrors

	// localOrigin: a base URL is on this machine, so URLs the origin names
	// may be too.
	localOrigin bool
	proxy       func(*http.Request) (*url.URL, error) // nil = unknown or none
	log         *slog.Logger
	http        *http.Client
	hosts       *hostLimiters  // shared with a successor whose request limits are the same
	bw          *bandwidthSlot // shared with successors
	gate        *gate          // shared with successors
	bufs        sync.Pool      // *[]byte of copyBufferSize
	chunks      sync.Pool      // *[]byte of pumpChunk

	// ctr counts for this Client and every Client of its succession;
	// see Stats.
	ctr       *counters
	base      Stats                 // ctr when this Client took over
	frozen    atomic.Pointer[Stats] // set when a successor took over
	succeeded atomic.Bool
}

// Stats are a Client's counters: HTTP requests sent (every attempt and
// redirect hop), retries (of a request, and re-downloads after a mismatch)
// and blob bytes received; of those bytes, the ones that came from one of
// the mirrors (origin.mirrors), and the ones whose answer said, in the
// X-Cache-Status header of a site cache (deploy/site-cache/nginx.conf),
// that the cache had them (HIT) or fetched them upstream (MISS). See
// (*Client).Stats for which Client's.
type Stats struct {
	Requests, Retries, BytesDownloaded uint64
	BytesFromMirrors                   uint64
	BytesCacheHit, BytesCacheMiss      uint64
}

// New validates cfg and returns a Client. BaseURL and Mirrors must be
// https, or http to a loopback host unless AllowInsecure. An empty BaseURL
// is allowed: every load then fails with reason noOrigin.
func New(cfg Config) (*Client, error) {
	c, err := newUnshared(cfg)
	if err != nil {
		return nil, err
	}
	c.hosts = newHostLimiters(c.cfg.RequestsPerSecond, c.cfg.Burst)
	c.bw = newBandwidthSlot(c.cfg.BytesPerSecond)
	c.gate = newGate(c.cfg.Concurrency)
	c.ctr = new(counters)
	return c, nil
}

// newUnshared validates cfg and builds a Client without the parts a
// successor takes over (limiters, gate, counters).
func newUnshared(cfg Config) (*Client, error) {
	cfg = withDefaults(cfg)
	c := &Client{
		cfg: cfg,
		log: cfg.Logger, // the caller names the component
	}
	c.bufs.New = func() any { b := make([]byte, copyBufferSize); return &b }
	c.chunks.New = func() any { b := make([]byte, pumpChunk); return &b }
	for i, s := range append([]string{cfg.BaseURL}, cfg.Mirrors...) {
		if i == 0 && s == "" {
			continue
		}
		u, err := c.parseBase(s)
		if err != nil {
			return nil, err
		}
		c.bases = append(c.bases, u)
		c.localOrigin = c.localOrigin || loopback(u.Hostname())
	}
	rt := cfg.Transport
	if rt == nil {
		t := cleanhttp.DefaultPooledTransport()
		if cfg.Proxy != nil {
			t.Proxy = cfg.Proxy
		}
		t.DialContext = newDialer(cfg.Resolver).DialContext
		if cfg.RootCAs != nil {
			t.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
		}
		t.ReadBufferSize = 64 << 10
		t.MaxIdleConnsPerHost = max(t.MaxIdleConnsPerHost, cfg.Concurrency+2)
		rt = t
	}
	if t, ok := rt.(*http.Transport); ok {
		c.proxy = t.Proxy
	}
	c.http = &http.Client{Transport: &transport{c: c, base: rt}, CheckRedirect: c.checkRedirect}
	return c, nil
}

func withDefaults(cfg Config) Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.RetryWaitMin, DefaultRetryWaitMin)
	def(&cfg.RetryWaitMax, DefaultRetryWaitMax)
	def(&cfg.AttemptTimeout, DefaultAttemptTimeout)
	def(&cfg.StallWindow, DefaultStallWindow)
	if cfg.RetryWaitMax < cfg.RetryWaitMin {
		cfg.RetryWaitMax = cfg.RetryWaitMin
	}
	if cfg.Burst < 1 {
		cfg.Burst = 1
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.StallMinBytesPerSecond == 0 {
		cfg.StallMinBytesPerSecond = DefaultStallMinBytesPerSecond
	}
	switch {
	case cfg.MaxHashRetries == 0:
		cfg.MaxHashRetries = DefaultMaxHashRetries
	case cfg.MaxHashRetries < 0:
		cfg.MaxHashRetries = 0
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = version.UserAgent()
	}
	if cfg.Token == nil {
		cfg.Token = func() string { return "" }
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// Close closes idle connections. The Client stays usable.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// TrustedKeys are the keys a manifest this client fetches must be signed
// by (none: any manifest). The caller must not modify them.
func (c *Client) TrustedKeys() []ed25519.PublicKey { return c.cfg.TrustedKeys }

func (c *Client) parseBase(s string) (*url.URL, error) {
	bad := func(format string, args ...any) error {
		return &errcode.Error{Code: errcode.FailedToFetchAvatarMetadata, Phase: errcode.PhaseLocal,
			Reason: errcode.ReasonInsecure, Message: fmt.Sprintf("origin URL %q: ", s) + fmt.Sprintf(format, args...)}
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return nil, bad("%v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, bad("only http and https are supported")
	case u.Host == "":
		return nil, bad("no host")
	case u.User != nil:
		return nil, bad("credentials in the URL are not allowed; use the session token")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, bad("a query or fragment is not allowed")
	case !c.secure(u):
		return nil, bad("plain http is allowed only to loopback hosts unless allow_insecure is set")
	}
	return u, nil
}

// secure reports whether u may be fetched: https, or http to loopback or
// with AllowInsecure.
func (c *Client) secure(u *url.URL) bool {
	switch u.Scheme {
	case "https":
		return true
	case "http":
		return c.cfg.AllowInsecure || loopback(u.Hostname())
	}
	return false
}

// reachable reports whether a URL that an origin named (an asset url or a
// redirect) may be fetched: it must be secure, and it may point at this
// machine only when the configured origin does too, so that a remote
// origin or CDN cannot steer the daemon to local services. This checks
// what the URL spells; the dialer checks where it leads (local.go).
func (c *Client) reachable(u *url.URL) bool {
	if !c.secure(u) || u.User != nil {
		return false
	}
	p, host := c.policy(u), u.Hostname()
	if a, ok := literalIP(host); ok {
		return !p.refused(a)
	}
	return p != refuseLocal || !localName(host)
}

func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authorized reports whether u is on the origin's or a mirror's scheme,
// host and port: only those get X-App-ID and Authorization.
func (c *Client) authorized(u *url.URL) bool {
	for _, b := range c.bases {
		if b.Scheme == u.Scheme && hostPort(b) == hostPort(u) {
			return true
		}
	}
	return false
}

func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

func (c *Client) buffer() *[]byte   { return c.bufs.Get().(*[]byte) }
func (c *Client) release(b *[]byte) { c.bufs.Put(b) }

func (c *Client) chunk() *[]byte         { return c.chunks.Get().(*[]byte) }
func (c *Client) releaseChunk(b *[]byte) { c.chunks.Put(b) }
