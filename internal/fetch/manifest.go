package fetch

import (
	"compress/gzip"
	"compress/zlib"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/assetd/assetd/apitype/errcode"
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

// Manifest fetches and validates (manifest.Decode + Document.Verify with
// TrustedKeys) the manifest of avatarID, from BaseURL and then, after a
// transient failure, from each mirror in turn. A non-empty etag is sent as
// If-None-Match; a 304 answer is NotModified.
func (c *Client) Manifest(ctx context.Context, avatarID, etag string) (*ManifestResult, error) {
	t := target{kind: kindManifest, avatarID: avatarID, token: c.cfg.Token, tokenProblem: c.cfg.TokenProblem}
	if err := manifest.ValidateID(avatarID); err != nil {
		return nil, errs.From(err).WithAvatar(avatarID)
	}
	if len(c.bases) == 0 {
		e := t.err(errcode.FailedToFetchAvatarMetadata, errcode.ReasonNoOrigin, false, "no origin is configured (origin.url)")
		e.Phase = errcode.PhaseLocal
		return nil, e
	}
	var err error
	for i, base := range c.bases {
		var res *ManifestResult
		t.base = base.Redacted()
		res, err = c.manifestFrom(ctx, t, manifestURL(base, avatarID), etag)
		if err == nil {
			return res, nil
		}
		if i+1 < len(c.bases) && failover(err) {
			c.log.Warn("origin failed; trying the next mirror", "avatar", avatarID, "url", base.Redacted(), "err", err)
			continue
		}
		break
	}
	return nil, err
}

func manifestURL(base *url.URL, id string) string {
	return base.JoinPath("v1", "avatars", id, "manifest").String()
}

func (c *Client) manifestFrom(ctx context.Context, t target, u, etag string) (*ManifestResult, error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, t.err(t.fail(), errcode.ReasonNoOrigin, false, "manifest URL: %v", err)
	}
	req.Header.Set("Accept", "application/json")
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	var res *ManifestResult
	var handled *http.Response
	req.SetResponseHandler(func(resp *http.Response) error {
		handled = resp
		defer closeBody(resp)
		switch {
		case resp.StatusCode == http.StatusOK:
			var err error
			res, err = c.readManifest(t, resp)
			return err
		case resp.StatusCode == http.StatusNotModified && etag != "":
			res = &ManifestResult{NotModified: true, ETag: resp.Header.Get("ETag"),
				MaxAge: maxAge(resp.Header), URL: resp.Request.URL.String()}
			if res.ETag == "" {
				res.ETag = etag
			}
			return nil
		}
		return &stop{t.status(resp, c.cfg.RetryWaitMax)}
	})
	resp, err := c.retryClient(ctx, nil).Do(req)
	if err := c.finish(ctx, t, resp, handled, err); err != nil {
		return nil, err
	}
	return res, nil
}

// readManifest reads at most MaxManifestBytes after any Content-Encoding
// is undone, so a compression bomb costs nothing, then parses and verifies.
func (c *Client) readManifest(t target, resp *http.Response) (*ManifestResult, error) {
	r := io.Reader(resp.Body)
	enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding")))
	if !resp.Uncompressed && enc != "" && enc != "identity" {
		var err error
		switch enc {
		case "gzip", "x-gzip":
			r, err = gzip.NewReader(resp.Body)
		case "deflate":
			r, err = zlib.NewReader(resp.Body)
		default:
			return nil, &stop{t.err(t.fail(), errcode.ReasonInvalidManifest, false, "manifest: unsupported Content-Encoding %q", enc)}
		}
		if err != nil {
			return nil, t.network(err)
		}
	}
	raw, err := io.ReadAll(io.LimitReader(r, manifest.MaxManifestBytes+1))
	if err != nil {
		return nil, t.network(err)
	}
	if len(raw) > manifest.MaxManifestBytes {
		return nil, t.err(t.fail(), errcode.ReasonInvalidManifest, false, "manifest is larger than %d bytes", manifest.MaxManifestBytes)
	}
	if html(resp, raw) {
		return nil, t.htmlAnswer(resp)
	}
	doc, err := manifest.Decode(raw, t.avatarID, c.cfg.MaxAssetBytes)
	if err != nil {
		e := errs.From(err)
		e.Message = t.redact(e.Message) // it may quote the manifest, the origin's text
		var syntax *json.SyntaxError
		if errors.As(e.Err, &syntax) || errors.Is(e.Err, io.ErrUnexpectedEOF) {
			// unparsable: a proxy's page or a cut body; another attempt may do
			c := *e
			c.Transient = true
			return nil, &c
		}
		return nil, e
	}
	if err := doc.Verify(c.cfg.TrustedKeys); err != nil {
		return nil, err
	}
	return &ManifestResult{Manifest: doc.Manifest, Raw: raw, ETag: resp.Header.Get("ETag"),
		MaxAge: maxAge(resp.Header), URL: resp.Request.URL.String()}, nil
}

// maxAge is Cache-Control's max-age; 0 when absent or no-cache/no-store.
func maxAge(h http.Header) time.Duration {
	var age time.Duration
	for _, v := range h.Values("Cache-Control") {
		for _, d := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-cache", "no-store":
				return 0
			case "max-age":
				s, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64)
				if err == nil && s > 0 && s < 1<<31 {
					age = time.Duration(s) * time.Second
				}
			}
		}
	}
	return age
}

// finish turns what the retry layer returned into nil or the protocol's
// error. handled is the last response the handler took (and closed); any
// other response is an answer retries could not change.
func (c *Client) finish(ctx context.Context, t target, resp, handled *http.Response, err error) error {
	if resp != nil && resp != handled {
		defer closeBody(resp)
	}
	switch {
	case ctx.Err() != nil:
		return t.cancelled(ctx)
	case err != nil:
		return t.network(err)
	case resp != nil && resp != handled:
		return t.status(resp, c.cfg.RetryWaitMax)
	}
	return nil
}

// failover reports whether a mirror may succeed where err happened: a
// network failure, a 5xx, or a certificate this device does not trust.
func failover(err error) bool {
	var e *errcode.Error
	if errors.As(err, &e) && untrustedCertificate(e.Err) {
		return true // not retried, but a mirror has its own certificate (a site cache's expired)
	}
	if !errors.As(err, &e) || !e.Transient {
		return false
	}
	switch {
	case e.Code == errcode.ServerError, strings.HasPrefix(e.Reason, "http5"):
		return true
	}
	switch e.Reason {
	case errcode.ReasonNetwork, errcode.ReasonTimeout, errcode.ReasonStalled:
		return true
	}
	return false
}

// closeBody closes a body that a retry would otherwise drain: the handler
// has read what it wanted.
func closeBody(resp *http.Response) {
	resp.Body.Close()
	resp.Body = http.NoBody
}
