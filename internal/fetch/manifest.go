package fetch

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
)

// ManifestResult is the answer to a manifest request.
type ManifestResult struct {
	Manifest    *manifest.Manifest // nil when NotModified
	Raw         []byte             // the document as received (for signature and storage)
	ETag        string
	MaxAge      time.Duration // from Cache-Control, 0 if none
	NotModified bool          // 304 to If-None-Match
	URL         string        // the manifest URL that answered (resolves relative asset URLs)
}

// Manifest fetches and validates (manifest.Parse + manifest.Verify with TrustedKeys).
func (c *Client) Manifest(ctx context.Context, avatarID, etag string) (*ManifestResult, error) {
	if err := manifest.ValidateID(avatarID); err != nil {
		return nil, err
	}
	u := strings.TrimRight(c.cfg.BaseURL, "/") + "/v1/avatars/" + avatarID + "/manifest"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &errs.Error{Code: errs.FailedToFetchAvatarMetadata, Phase: errs.PhaseMetadata, AvatarID: avatarID, Transient: true, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		return &ManifestResult{NotModified: true, ETag: etag, URL: u}, nil
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, manifest.MaxManifestBytes+1))
	if err != nil {
		return nil, &errs.Error{Code: errs.FailedToFetchAvatarMetadata, Phase: errs.PhaseMetadata, AvatarID: avatarID, Transient: true, Err: err}
	}
	m, err := manifest.Parse(raw, avatarID, c.cfg.MaxAssetBytes)
	if err != nil {
		return nil, err
	}
	if err := manifest.Verify(m, raw, c.cfg.TrustedKeys); err != nil {
		return nil, err
	}
	return &ManifestResult{Manifest: m, Raw: raw, ETag: resp.Header.Get("ETag"), URL: u}, nil
}
