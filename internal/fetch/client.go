package fetch

import (
	"crypto/ed25519"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// Config configures a Client. Zero durations and limits take the defaults
// of config.md; see New.
type Config struct {
	BaseURL       string        // origin.url
	Mirrors       []string      // tried in order when BaseURL fails (manifest and default blob URLs)
	AppID         string        // sent as X-App-ID to the origin and its mirrors only
	Token         func() string // current session token, "" for none; read per request
	AllowInsecure bool          // plain http to non-loopback hosts
	TrustedKeys   []ed25519.PublicKey

	RequestsPerSecond float64 // per host; <= 0 = unlimited
	Burst             int
	BytesPerSecond    int64 // 0 = unlimited, shared by all downloads of this Client
	Concurrency       int   // blob downloads at once

	MaxRetries             int // retries after the first attempt; < 0 = none
	RetryWaitMin           time.Duration
	RetryWaitMax           time.Duration
	AttemptTimeout         time.Duration
	StallWindow            time.Duration
	StallMinBytesPerSecond int64 // 0 = 1024; < 0 disables the stall watchdog
	MaxAssetBytes          int64
	MaxHashRetries         int // re-downloads after size/hash mismatch; 0 = 2, < 0 = none
	UserAgent              string
	Logger                 *slog.Logger
	Transport              http.RoundTripper // nil = a cleanhttp pooled transport honouring HTTP(S)_PROXY/NO_PROXY
}

// Client fetches manifests and blobs from one origin and its mirrors. It is
// safe for concurrent use.
type Client struct {
	cfg  Config
	http *http.Client

	requests, retries, bytes atomic.Uint64
}

// Stats are a Client's counters since New.
type Stats struct{ Requests, Retries, BytesDownloaded uint64 }

// New validates cfg and returns a Client.
func New(cfg Config) (*Client, error) {
	rt := cfg.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	return &Client{cfg: cfg, http: &http.Client{Transport: rt}}, nil
}

// Close closes idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{Requests: c.requests.Load(), Retries: c.retries.Load(), BytesDownloaded: c.bytes.Load()}
}
