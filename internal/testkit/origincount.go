package testkit

import (
	"net/http"
	"time"
)

// Auths is the Authorization header of every request so far.
func (o *Origin) Auths() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	auths := make([]string, len(o.reqs))
	for i, h := range o.reqs {
		auths[i] = h.Get("Authorization")
	}
	return auths
}

// Headers is every request's headers so far, in order.
func (o *Origin) Headers() []http.Header {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]http.Header(nil), o.reqs...)
}

// Hits is the number of requests for path, however they were answered.
func (o *Origin) Hits(path string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.hits[path]
}

// TotalHits is the number of requests of any kind so far.
func (o *Origin) TotalHits() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.reqs)
}

// BlobGets is the number of requests for a blob the origin has.
func (o *Origin) BlobGets(digest string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gets[digest]
}

// TotalBlobGets is the number of requests for blobs the origin has.
func (o *Origin) TotalBlobGets() int { return int(o.BlobReqs.Load()) }

// BlobStarts is the offset each request for digest started at.
func (o *Origin) BlobStarts(digest string) []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int(nil), o.starts[digest]...)
}

// ManifestGets is the number of manifest requests for id.
func (o *Origin) ManifestGets(id string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.manifests[id]
}

// NotModified is the number of manifest requests for id answered 304.
func (o *Origin) NotModified(id string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.notMod[id]
}

// Requests is the number of manifest requests and requests for blobs the
// origin has.
func (o *Origin) Requests() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.manifests {
		n += c
	}
	for _, c := range o.gets {
		n += c
	}
	return n
}

// Inflight is the number of blob bodies being written (held ones too).
func (o *Origin) Inflight() int { return int(o.inflight.Load()) }

// Resent is the bytes sent beyond each blob's size: downloaded again.
func (o *Origin) Resent() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n int64
	for d, sent := range o.sentBy {
		if b, ok := o.blobs[d]; ok {
			n += max(0, sent-int64(len(b)))
		}
	}
	return n
}

// SentWhenIdle is BytesSent once every handler has returned (waiting up
// to 10 s): a client can read a body's last bytes before the handler's
// Write returns and counts them.
func (o *Origin) SentWhenIdle() int64 {
	deadline := time.Now().Add(10 * time.Second)
	for {
		o.mu.Lock()
		active := o.active
		o.mu.Unlock()
		if active == 0 || time.Now().After(deadline) {
			return o.BytesSent.Load()
		}
		time.Sleep(time.Millisecond)
	}
}
