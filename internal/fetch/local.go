package fetch

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A URL an origin names (an asset url, a redirect) must not steer the
// daemon at this machine or at link-local services (169.254.169.254 is
// cloud metadata). Spellings are endless (0.0.0.0, [::], 127.1,
// 2130706433, localhost., a DNS name that resolves to 127.0.0.1, a name
// that rebinds between two lookups), so the rule is enforced on the
// address actually connected to: the dialer's Control hook refuses it
// before connect(2). A request says what it may reach through its context
// (localPolicy), set per request by the transport. With a proxy the dialer
// sees only the proxy, so the target's resolved addresses are checked
// before the request instead.
//
// Trusted as configured: the origin's and mirrors' scheme, host and port
// (the operator wrote them; the connection pool is keyed by them too, so
// a pooled connection never crosses from a trusted key to an untrusted
// one). A loopback origin.url may name loopback (tests, `assetd origin` on
// the device). fetch.allow_local_targets lifts the rule.

// localPolicy is what addresses one request may not connect to.
type localPolicy int

const (
	allowAll       localPolicy = iota
	refuseLinkOnly             // a loopback origin: loopback allowed, link-local not
	refuseLocal                // loopback, unspecified and link-local refused
)

// policyKey carries a request's localPolicy to the dialer.
const policyKey ctxKey = 1

// errLocalTarget marks a connection refused by the local-target rule.
var errLocalTarget = errors.New("refused: an address on this machine or link-local, named by the origin")

type localTargetError struct {
	host string
	addr netip.Addr
}

func (e *localTargetError) Error() string {
	const why = "on this machine or link-local; a URL the origin names may not point there (fetch.allow_local_targets lifts this)"
	if e.host == "" || e.host == e.addr.String() {
		return fmt.Sprintf("refused to connect to %s: %s", e.addr, why)
	}
	return fmt.Sprintf("%s resolves to %s: %s", e.host, e.addr, why)
}

func (e *localTargetError) Unwrap() error { return errLocalTarget }

// refused reports whether p refuses a connection to a.
func (p localPolicy) refused(a netip.Addr) bool {
	a = a.Unmap()
	switch p {
	case refuseLocal:
		// 0.0.0.0/8 is "this host on this network" (RFC 1122), never a remote origin
		return a.IsLoopback() || a.IsUnspecified() || a.IsLinkLocalUnicast() || a.Is4() && a.As4()[0] == 0
	case refuseLinkOnly:
		return a.IsLinkLocalUnicast()
	}
	return false
}

// policy is the rule for a request to u.
func (c *Client) policy(u *url.URL) localPolicy {
	switch {
	case c.cfg.AllowLocalTargets || c.authorized(u):
		return allowAll
	case c.localOrigin:
		return refuseLinkOnly
	}
	return refuseLocal
}

// dialControl is the dialer's Control hook: it sees each address the
// dialer is about to connect to, after resolution.
func dialControl(ctx context.Context, network, address string, _ syscall.RawConn) error {
	p, _ := ctx.Value(policyKey).(localPolicy)
	if p == allowAll {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: unparsable address %q", errLocalTarget, address)
	}
	if p.refused(ap.Addr()) {
		return &localTargetError{addr: ap.Addr()}
	}
	return nil
}

// newDialer is the dialer of the Client's own transport (cleanhttp's
// settings plus the Control hook).
func newDialer(r *net.Resolver) *net.Dialer {
	return &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second,
		Resolver: r, ControlContext: dialControl}
}

// guard prepares req under the local-target rule: it returns the context
// the request is sent with, or the refusal. Through a proxy it resolves
// the target's host here and refuses if any address is refused.
func (c *Client) guard(req *http.Request) (context.Context, error) {
	ctx := req.Context()
	p := c.policy(req.URL)
	if p == allowAll {
		return ctx, nil
	}
	host := req.URL.Hostname()
	if a, ok := literalIP(host); ok && p.refused(a) {
		return nil, &localTargetError{host: host, addr: a}
	}
	if c.proxy != nil {
		pu, err := c.proxy(req)
		if err != nil {
			return nil, err
		}
		if pu != nil {
			return ctx, c.checkResolved(ctx, p, host)
		}
	}
	return context.WithValue(ctx, policyKey, p), nil
}

func (c *Client) checkResolved(ctx context.Context, p localPolicy, host string) error {
	if a, ok := literalIP(host); ok {
		if p.refused(a) {
			return &localTargetError{host: host, addr: a}
		}
		return nil
	}
	r := c.cfg.Resolver
	if r == nil {
		r = net.DefaultResolver
	}
	addrs, err := r.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if p.refused(a) {
			return &localTargetError{host: host, addr: a}
		}
	}
	return nil
}

// literalIP parses host as an IP address in any spelling a resolver
// accepts: dotted quad, IPv6 (with a zone), and the inet_aton forms
// getaddrinfo takes (127.1, 2130706433, 0x7f.1, 0177.0.0.1).
func literalIP(host string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.WithZone(""), true
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var n []uint64
	for _, p := range parts {
		v, err := strconv.ParseUint(p, 0, 32)
		if err != nil || p == "" || p[0] == '+' {
			return netip.Addr{}, false
		}
		n = append(n, v)
	}
	// the last part fills the bytes the others left
	var ip uint64
	for i, v := range n[:len(n)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		ip |= v << (24 - 8*i)
	}
	last := n[len(n)-1]
	if last >= 1<<(32-8*(len(n)-1)) {
		return netip.Addr{}, false
	}
	ip |= last
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

// localName reports whether host names this machine without a lookup:
// localhost and its subdomains (RFC 6761), with or without the final dot.
func localName(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	return h == "localhost" || strings.HasSuffix(h, ".localhost")
}
