package fetch

import (
	"net/url"
	"strings"

	"github.com/assetd/assetd/internal/errs"
)

// blobURLs lists where an asset may be had: its own url (resolved against
// the manifest URL), or the default blob path on the origin and each
// mirror, the one that served the manifest first.
func (c *Client) blobURLs(t target, b Blob) ([]string, error) {
	if len(c.bases) == 0 && (b.Asset.URL == "" || b.ManifestURL == "") {
		e := t.err(t.fail(), errs.ReasonNoOrigin, false, "no origin is configured (origin.url)")
		e.Phase = errs.PhaseLocal
		return nil, e
	}
	if b.Asset.URL != "" {
		base := b.ManifestURL
		if base == "" {
			base = manifestURL(c.bases[0], b.AvatarID)
		}
		bu, err := url.Parse(base)
		if err != nil {
			return nil, t.err(t.fail(), errs.ReasonInvalidManifest, false, "manifest URL %q: %v", base, err)
		}
		ref, err := url.Parse(b.Asset.URL)
		if err != nil {
			return nil, t.err(t.fail(), errs.ReasonInvalidManifest, false, "%s: url: %v", t.what(), err)
		}
		u := bu.ResolveReference(ref)
		if !c.reachable(u) {
			return nil, t.err(t.fail(), errs.ReasonInsecure, false, "%s: url %s is not https, or points at this machine for a remote origin", t.what(), u.Redacted())
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
