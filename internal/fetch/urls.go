package fetch

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"

	"github.com/assetd/assetd/apitype/errcode"
)

// blobURLs lists where an asset may be had: its own url (resolved against
// the manifest URL), or the default blob path on the origin and each
// mirror, the one that served the manifest first.
func (c *Client) blobURLs(t target, b Blob) ([]string, error) {
	if len(c.bases) == 0 && (b.Asset.URL == "" || b.ManifestURL == "") {
		e := t.err(t.fail(), errcode.ReasonNoOrigin, false, "no origin is configured (origin.url)")
		e.Phase = errcode.PhaseLocal
		return nil, e
	}
	if b.Asset.URL != "" {
		base := b.ManifestURL
		if base == "" {
			base = manifestURL(c.bases[0], b.AvatarID)
		}
		bu, err := url.Parse(base)
		if err != nil {
			return nil, t.err(t.fail(), errcode.ReasonInvalidManifest, false, "manifest URL %q: %v", base, err)
		}
		ref, err := url.Parse(b.Asset.URL)
		if err != nil {
			return nil, t.err(t.fail(), errcode.ReasonInvalidManifest, false, "%s: url: %v", t.what(), err)
		}
		u := bu.ResolveReference(ref)
		if !c.reachable(u) {
			return nil, t.err(t.fail(), errcode.ReasonInsecure, false, "%s: url %s is not https, or points at this machine for a remote origin", t.what(), u.Redacted())
		}
		return []string{u.String()}, nil
	}
	first := 0
	for i, base := range c.bases {
		if b.ManifestURL != "" && strings.HasPrefix(b.ManifestURL, strings.TrimRight(base.String(), "/")+"/") {
			first = i
			break
		}
	}
	urls := make([]string, 0, len(c.bases))
	blob := func(base *url.URL) string { return base.JoinPath("v1", "blobs", "sha256", b.Asset.SHA256).String() }
	urls = append(urls, blob(c.bases[first]))
	for i, base := range c.bases {
		if i != first {
			urls = append(urls, blob(base))
		}
	}
	return urls, nil
}

// onMirror reports whether u is under one of the mirrors' base URLs
// rather than the origin's (the longest base that u starts with wins), for
// Stats.BytesFromMirrors.
func (c *Client) onMirror(u string) bool {
	mirror, longest := false, 0
	for i, base := range c.bases {
		p := strings.TrimRight(base.String(), "/") + "/"
		if len(p) > longest && strings.HasPrefix(u, p) {
			mirror, longest = i > 0 || c.cfg.BaseURL == "", len(p)
		}
	}
	return mirror
}

// counting wraps progress, the byte count of one blob answer, to count its
// bytes by where they came from: a mirror (mirror), and a site cache's
// disk or its upstream (the answer's X-Cache-Status). Truncations (n < 0)
// only pass through: what was received was received.
func (c *Client) counting(mirror bool, h http.Header, progress func(int64)) func(int64) {
	var ctrs []*atomic.Uint64
	if mirror {
		ctrs = append(ctrs, &c.ctr.mirrorBytes)
	}
	switch cacheStatus(h) {
	case cacheHit:
		ctrs = append(ctrs, &c.ctr.cacheHit)
	case cacheMiss:
		ctrs = append(ctrs, &c.ctr.cacheMiss)
	}
	if len(ctrs) == 0 {
		return progress
	}
	return func(n int64) {
		if n > 0 {
			for _, ctr := range ctrs {
				ctr.Add(uint64(n))
			}
		}
		progress(n)
	}
}

type cacheResult int

const (
	cacheNone cacheResult = iota // no site cache said anything
	cacheHit                     // served from the cache's disk
	cacheMiss                    // fetched from upstream by the cache
)

// cacheStatus reads nginx's $upstream_cache_status, as the shipped site
// cache sends it in X-Cache-Status: HIT, STALE, UPDATING and REVALIDATED
// answer from the cache's disk; MISS, EXPIRED and BYPASS from upstream.
func cacheStatus(h http.Header) cacheResult {
	switch strings.ToUpper(strings.TrimSpace(h.Get("X-Cache-Status"))) {
	case "HIT", "STALE", "UPDATING", "REVALIDATED":
		return cacheHit
	case "MISS", "EXPIRED", "BYPASS":
		return cacheMiss
	}
	return cacheNone
}
