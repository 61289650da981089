package fetch

import (
	"errors"
	"sync/atomic"
)

// counters are shared by a Client and its successors: a request the old
// Client makes for a download still running after a reload counts too.
type counters struct {
	requests, retries, bytes         atomic.Uint64
	mirrorBytes, cacheHit, cacheMiss atomic.Uint64
}

func (c *counters) load() Stats {
	return Stats{Requests: c.requests.Load(), Retries: c.retries.Load(), BytesDownloaded: c.bytes.Load(),
		BytesFromMirrors: c.mirrorBytes.Load(), BytesCacheHit: c.cacheHit.Load(), BytesCacheMiss: c.cacheMiss.Load()}
}

func (s Stats) minus(o Stats) Stats {
	return Stats{Requests: s.Requests - o.Requests, Retries: s.Retries - o.Retries, BytesDownloaded: s.BytesDownloaded - o.BytesDownloaded,
		BytesFromMirrors: s.BytesFromMirrors - o.BytesFromMirrors,
		BytesCacheHit:    s.BytesCacheHit - o.BytesCacheHit, BytesCacheMiss: s.BytesCacheMiss - o.BytesCacheMiss}
}

// Stats returns this Client's share of its succession's counters: what was
// counted from the moment it was made (by New or Successor) until its
// successor took over, or until now while it has none. What an old Client
// does after the hand-over (its downloads still running) is its
// successor's share. The shares of a succession are disjoint and add up to
// every request, retry and byte counted, so the sum of each replaced
// Client's final Stats and the newest Client's Stats is the exact total,
// however late the old Clients' Stats are read.
func (c *Client) Stats() Stats {
	if f := c.frozen.Load(); f != nil {
		return *f
	}
	return c.ctr.load().minus(c.base)
}

// Successor returns a Client for cfg that takes c's place (a reloaded
// configuration), sharing with c, so that downloads started on either are
// under one cap and one queue:
//   - the download gate (the concurrency cap and its interactive-first
//     queue), resized to cfg's Concurrency;
//   - the bandwidth limiter, replaced for all of them when cfg's
//     BytesPerSecond differs;
//   - the per-host request limiters, when cfg's RequestsPerSecond and Burst
//     are c's;
//   - the counters; see Stats.
//
// c stays usable for the downloads it runs. A Client has at most one
// successor; an invalid cfg is an error and changes nothing.
func (c *Client) Successor(cfg Config) (*Client, error) {
	n, err := newUnshared(cfg)
	if err != nil {
		return nil, err
	}
	if !c.succeeded.CompareAndSwap(false, true) {
		return nil, errors.New("fetch: this client already has a successor")
	}
	n.hosts = c.hosts
	if n.cfg.RequestsPerSecond != c.cfg.RequestsPerSecond || n.cfg.Burst != c.cfg.Burst {
		n.hosts = newHostLimiters(n.cfg.RequestsPerSecond, n.cfg.Burst)
	}
	n.bw = c.bw
	n.bw.set(n.cfg.BytesPerSecond)
	n.gate = c.gate
	n.gate.resize(n.cfg.Concurrency)
	n.ctr = c.ctr
	at := c.ctr.load()
	n.base = at
	mine := at.minus(c.base)
	c.frozen.Store(&mine)
	return n, nil
}
