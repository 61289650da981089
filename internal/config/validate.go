package config

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/assetd/assetd/internal/duty"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/printable"
)

// Bounds on values. They keep a typo from turning into a denial of service
// (concurrency = 10000) or a daemon that never retries.
const (
	MaxConcurrency    = 64
	MaxLoads          = 4096
	MaxConnections    = 1 << 20
	MinConnections    = 16
	MaxRetries        = 20
	MaxHashRetries    = 10
	MaxBurst          = 10000
	MaxRequestsPerSec = 10000
	MaxAssetBytes     = 1 << 40 // 1 TiB
	MaxRetryWait      = time.Hour
	MaxAttemptTimeout = 24 * time.Hour
	MinScrubInterval  = time.Minute
	MinRefresh        = time.Minute
	maxSocketPath     = 107 // sun_path holds 108 bytes with the NUL
	maxAppIDBytes     = 256
)

// checker collects problems, each placed at its key's line.
type checker struct {
	file string
	idx  keyIndex
	src  map[string]string // key -> environment variable that set it
	list []*Error
}

func (c *checker) bad(key, format string, args ...any) {
	e := &Error{File: c.file, Line: c.idx.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
	if env, ok := c.src[key]; ok {
		e.File, e.Line = "$"+env, 0
	}
	c.list = append(c.list, e)
}

// set reports whether the document sets key (the defaults set nothing).
func (c *checker) set(key string) bool {
	_, ok := c.idx[key]
	return ok
}

func (c *checker) intRange(key string, v, lo, hi int) {
	if v < lo || v > hi {
		c.bad(key, "must be between %d and %d, not %d", lo, hi, v)
	}
}

func (c *checker) positive(key string, d Duration, max time.Duration) {
	switch {
	case d <= 0:
		c.bad(key, "must be more than 0")
	case max > 0 && d.Std() > max:
		c.bad(key, "must be at most %s", Duration(max))
	}
}

func (c *checker) zeroOrAtLeast(key string, d Duration, min time.Duration) {
	if d < 0 || d > 0 && d.Std() < min {
		c.bad(key, `must be "0" (never) or at least %s`, Duration(min))
	}
}

func (c *checker) nonNegative(key string, s Size) {
	if s < 0 {
		c.bad(key, "must not be negative")
	}
}

func (c *checker) absPath(key, p string, required bool) {
	switch {
	case p == "":
		if required {
			c.bad(key, "must not be empty")
		}
	case !filepath.IsAbs(p):
		c.bad(key, "must be an absolute path, not %q", truncate(p))
	case strings.ContainsRune(p, 0):
		c.bad(key, "must not contain a NUL byte")
	}
}

// validate checks every value of c; file and idx place the problems.
func (cfg *Config) validate(file string, idx keyIndex, src map[string]string) error {
	c := &checker{file: file, idx: idx, src: src}
	cfg.Origin.check(c)
	cfg.Fetch.check(c)
	cfg.Store.check(c)
	cfg.API.check(c)
	cfg.Preload.check(c)
	cfg.Log.check(c)
	cfg.Metrics.check(c)
	return joinErrors(c.list)
}

func (o *Origin) check(c *checker) {
	if o.URL != "" {
		if err := CheckOriginURL(o.URL, o.AllowInsecure); err != nil {
			c.bad("origin.url", "%v", err)
		}
	}
	seen := map[string]bool{o.URL: true}
	for i, m := range o.Mirrors {
		if err := CheckOriginURL(m, o.AllowInsecure); err != nil {
			c.bad("origin.mirrors", "mirror %d: %v", i+1, err)
		} else if seen[m] {
			c.bad("origin.mirrors", "mirror %d: %s is listed twice", i+1, m)
		}
		seen[m] = true
	}
	if len(o.Mirrors) > 0 && o.URL == "" {
		c.bad("origin.mirrors", "mirrors need origin.url")
	}
	if len(o.AppID) > maxAppIDBytes || !printable.String(o.AppID) {
		c.bad("origin.app_id", "must be at most %d printable characters", maxAppIDBytes)
	}
	c.absPath("origin.session_token_file", o.SessionTokenFile, false)
	for i, k := range o.TrustedKeys {
		if _, err := manifest.ParsePublicKey(k); err != nil {
			c.bad("origin.trusted_keys", "key %d: %v", i+1, err)
		}
	}
	c.absPath("origin.ca_file", o.CAFile, false)
	if filepath.IsAbs(o.CAFile) && !strings.ContainsRune(o.CAFile, 0) {
		if _, err := ReadCAFile(o.CAFile); err != nil {
			c.bad("origin.ca_file", "%s: %v", o.CAFile, err)
		}
	}
}

func (f *Fetch) check(c *checker) {
	if math.IsNaN(f.RequestsPerSecond) || f.RequestsPerSecond <= 0 || f.RequestsPerSecond > MaxRequestsPerSec {
		c.bad("fetch.requests_per_second", "must be more than 0 and at most %d", MaxRequestsPerSec)
	}
	c.intRange("fetch.burst", f.Burst, 1, MaxBurst)
	c.nonNegative("fetch.bytes_per_second", f.BytesPerSecond)
	c.intRange("fetch.concurrency", f.Concurrency, 1, MaxConcurrency)
	c.intRange("fetch.max_retries", f.MaxRetries, 0, MaxRetries)
	c.intRange("fetch.max_hash_retries", f.MaxHashRetries, 0, MaxHashRetries)
	c.positive("fetch.retry_wait_min", f.RetryWaitMin, MaxRetryWait)
	c.positive("fetch.retry_wait_max", f.RetryWaitMax, MaxRetryWait)
	if f.RetryWaitMin > 0 && f.RetryWaitMax > 0 && f.RetryWaitMin > f.RetryWaitMax {
		if c.set("fetch.retry_wait_max") || !c.set("fetch.retry_wait_min") {
			c.bad("fetch.retry_wait_max", "must not be less than fetch.retry_wait_min (%s)", f.RetryWaitMin)
		} else {
			c.bad("fetch.retry_wait_min", "must not be more than fetch.retry_wait_max (%s)", f.RetryWaitMax)
		}
	}
	c.positive("fetch.attempt_timeout", f.AttemptTimeout, MaxAttemptTimeout)
	c.positive("fetch.stall_window", f.StallWindow, MaxAttemptTimeout)
	c.nonNegative("fetch.stall_min_bytes_per_second", f.StallMinBytesPerSecond)
	if f.MaxAssetBytes <= 0 || f.MaxAssetBytes > MaxAssetBytes {
		c.bad("fetch.max_asset_bytes", "must be more than 0 and at most %s", Size(MaxAssetBytes))
	}
}

func (s *Store) check(c *checker) {
	c.absPath("store.dir", s.Dir, true)
	c.nonNegative("store.max_bytes", s.MaxBytes)
	c.nonNegative("store.reserve_bytes", s.ReserveBytes)
	c.zeroOrAtLeast("store.scrub_interval", s.ScrubInterval, MinScrubInterval)
}

func (a *API) check(c *checker) {
	c.absPath("api.socket", a.Socket, true)
	if len(a.Socket) > maxSocketPath {
		c.bad("api.socket", "must be at most %d bytes (the limit of a Unix socket path)", maxSocketPath)
	}
	switch m := uint32(a.SocketMode); {
	case m > 0o777:
		c.bad("api.socket_mode", "%s is not a permission mode (at most 0777)", a.SocketMode)
	case m&0o002 != 0:
		c.bad("api.socket_mode", "%s lets every user connect: the socket must not be world-writable", a.SocketMode)
	case m&0o600 != 0o600:
		c.bad("api.socket_mode", "%s must give its owner read and write (0600)", a.SocketMode)
	}
	if g := a.SocketGroup; g != "" && (len(g) > 64 || strings.ContainsAny(g, ":/\x00") || !printable.String(g) || strings.ContainsFunc(g, unicode.IsSpace)) {
		c.bad("api.socket_group", "%q is not a group name or number", truncate(g))
	}
	c.intRange("api.max_loads", a.MaxLoads, 1, MaxLoads)
	c.intRange("api.max_loads_per_uid", a.MaxLoadsPerUID, 1, within(a.MaxLoads, 1, MaxLoads))
	if a.MaxConnections != 0 {
		c.intRange("api.max_connections", a.MaxConnections, MinConnections, MaxConnections)
	}
	c.intRange("api.max_connections_per_uid", a.MaxConnectionsPerUID, 1, MaxConnections)
	c.intRange("api.max_subscribers_per_uid", a.MaxSubscribersPerUID, 1, within(a.MaxConnectionsPerUID, 1, MaxConnections))
	for _, id := range a.AllowedUIDs {
		switch id {
		case math.MaxUint32:
			c.bad("api.allowed_uids", "%d is not a user ID", id)
		case OverflowID:
			c.bad("api.allowed_uids", "%d is the overflow user ID (nobody), which every user unmapped in a user namespace appears as: admitting it would admit them all; run the client as a user of its own", id)
		}
	}
	for _, id := range a.AllowedGIDs {
		switch id {
		case math.MaxUint32:
			c.bad("api.allowed_gids", "%d is not a group ID", id)
		case OverflowID:
			c.bad("api.allowed_gids", "%d is the overflow group ID (nogroup), which every group unmapped in a user namespace appears as: admitting it would admit them all; use a group of its own", id)
		}
	}
}

// OverflowID is the uid and gid the kernel reports for an identity that has
// no mapping in the reader's user namespace (/proc/sys/kernel/overflowuid):
// a container's users, NFS squashed files. Allowing it would allow every one
// of them, so the config refuses it.
const OverflowID = 65534

// within is v when it is in [lo, hi], else hi: the bound a key's value
// sets for another key, or the other key's own bound when the value is
// wrong itself (and reported as such).
func within(v, lo, hi int) int {
	if v < lo || v > hi {
		return hi
	}
	return v
}

func (p *Preload) check(c *checker) {
	seen := map[string]bool{}
	for _, id := range p.Avatars {
		if err := manifest.ValidateID(id); err != nil {
			c.bad("preload.avatars", "invalid avatar ID %q", truncate(id))
		} else if seen[id] {
			c.bad("preload.avatars", "%s is listed twice", id)
		}
		seen[id] = true
	}
	c.zeroOrAtLeast("preload.refresh_interval", p.RefreshInterval, MinRefresh)
	switch {
	case p.RefreshJitter < 0:
		c.bad("preload.refresh_jitter", "must not be negative")
	case p.RefreshInterval > 0 && p.RefreshJitter > p.RefreshInterval:
		if c.set("preload.refresh_jitter") || !c.set("preload.refresh_interval") {
			c.bad("preload.refresh_jitter", "must not be more than preload.refresh_interval (%s)", p.RefreshInterval)
		} else {
			c.bad("preload.refresh_interval", "must not be less than preload.refresh_jitter (%s)", p.RefreshJitter)
		}
	}
	if len(p.RefreshWindow) > maxRefreshWindows {
		c.bad("preload.refresh_window", "at most %d ranges, not %d", maxRefreshWindows, len(p.RefreshWindow))
	}
	for _, s := range p.RefreshWindow {
		if _, err := duty.ParseWindow(s); err != nil {
			c.bad("preload.refresh_window", "%s (a range of local time like \"02:00-05:00\"; it may cross midnight)", err)
		}
	}
}

// maxRefreshWindows bounds preload.refresh_window.
const maxRefreshWindows = 16

// RefreshWindows is preload.refresh_window parsed; Validate has checked it.
func (p *Preload) RefreshWindows() []duty.Window {
	ws, _ := duty.ParseWindows(p.RefreshWindow)
	return ws
}

func (l *Log) check(c *checker) {
	if _, ok := levels[l.Level]; !ok {
		c.bad("log.level", "must be debug, info, warn or error, not %q", truncate(l.Level))
	}
	if l.Format != "text" && l.Format != "json" {
		c.bad("log.format", "must be text or json, not %q", truncate(l.Format))
	}
}

func (m *Metrics) check(c *checker) {
	if m.Listen == "" {
		return
	}
	host, port, err := net.SplitHostPort(m.Listen)
	if err != nil {
		c.bad("metrics.listen", `%q is not host:port (like "127.0.0.1:9468")`, truncate(m.Listen))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		c.bad("metrics.listen", "%q: the port must be a number from 1 to 65535", truncate(m.Listen))
	}
	switch {
	case host != "" && !strings.EqualFold(host, "localhost") && net.ParseIP(host) == nil:
		c.bad("metrics.listen", "%q: the host must be an IP address or localhost, not a name", truncate(m.Listen))
	case !IsLoopback(host) && !m.AllowRemote:
		c.bad("metrics.listen", "%q is not a loopback address: the metrics have no authentication; set metrics.allow_remote = true to serve them to the network", truncate(m.Listen))
	}
}

// CheckOriginURL checks an origin or mirror base URL: absolute http(s), a
// host, no user info (it would be logged), no query or fragment, and plain
// http only to a loopback host unless insecure is allowed. fetch applies
// the same rule; it lives here too so that a bad file fails at load.
func CheckOriginURL(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL", truncate(raw))
	}
	switch {
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("%q must be an http:// or https:// URL", truncate(raw))
	case u.Host == "" || u.Hostname() == "":
		return fmt.Errorf("%q has no host", truncate(raw))
	case u.User != nil:
		return fmt.Errorf("the URL must not carry a user or password (use session_token_file)")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Errorf("%q must not have a query or fragment", truncate(raw))
	case u.Scheme == "http" && !allowInsecure && !IsLoopback(u.Hostname()):
		return fmt.Errorf("%q is plain http to a host that is not loopback; use https or set origin.allow_insecure", truncate(raw))
	}
	return nil
}

// IsLoopback reports whether host (no port) is localhost or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
