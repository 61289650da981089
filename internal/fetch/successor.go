package fetch

import (
	"errors"
	"sync/atomic"
)

// counters are a Client's request, retry and byte counts.
type counters struct{ requests, retries, bytes atomic.Uint64 }

func (c *counters) load() Stats {
	return Stats{Requests: c.requests.Load(), Retries: c.retries.Load(), BytesDownloaded: c.bytes.Load()}
}

// Stats returns the Client's counters since it was made.
func (c *Client) Stats() Stats { return c.ctr.load() }

// Successor returns a Client for cfg that takes c's place (a reloaded
// configuration), sharing with c, so that downloads started on either are
// under one cap and one queue:
//   - the download gate (the concurrency cap and its interactive-first
//     queue), resized to cfg's Concurrency;
//   - the bandwidth limiter, replaced for all of them when cfg's
//     BytesPerSecond differs;
//   - the per-host request limiters, when cfg's RequestsPerSecond and Burst
//     are c's.
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
	n.ctr = new(counters)
	return n, nil
}
