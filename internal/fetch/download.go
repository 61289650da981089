package fetch

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/manifest"
)

// Sink receives one blob's bytes; the store's ingest writer implements it.
type Sink interface {
	io.Writer
	Size() int64     // bytes already held: the resume offset
	Digest() string  // hex sha256 of the bytes held
	Truncate() error // drop everything, restart at 0
}

// Blob names one asset to download.
type Blob struct {
	AvatarID    string
	Asset       manifest.Asset
	ManifestURL string // resolves a relative Asset.URL; "" = BaseURL's manifest URL
	Background  bool   // queued behind interactive downloads at the concurrency cap
}

// Download fills sink until it holds exactly Asset.Size bytes whose sha256
// is Asset.SHA256, resuming from sink.Size() with Range. progress gets byte
// deltas (negative after a restart). It returns nil only when the sink holds
// the verified bytes.
func (c *Client) Download(ctx context.Context, b Blob, sink Sink, progress func(delta int64)) error {
	if err := sink.Truncate(); err != nil {
		return err
	}
	u := strings.TrimRight(c.cfg.BaseURL, "/") + "/v1/blobs/sha256/" + b.Asset.SHA256
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	c.requests.Add(1)
	resp, err := c.http.Do(req)
	if err != nil {
		return &errs.Error{Code: errs.FailedToDownloadAvatarAssets, Phase: errs.PhaseDownload, AvatarID: b.AvatarID, Asset: b.Asset.Path, Transient: true, Err: err}
	}
	defer resp.Body.Close()
	n, err := io.Copy(sink, resp.Body)
	c.bytes.Add(uint64(n))
	if progress != nil {
		progress(n)
	}
	if err != nil {
		return &errs.Error{Code: errs.FailedToDownloadAvatarAssets, Phase: errs.PhaseDownload, AvatarID: b.AvatarID, Asset: b.Asset.Path, Transient: true, Err: err}
	}
	if sink.Size() != b.Asset.Size || sink.Digest() != b.Asset.SHA256 {
		return &errs.Error{Code: errs.FailedToDownloadAvatarAssets, Phase: errs.PhaseVerify, AvatarID: b.AvatarID, Asset: b.Asset.Path, Transient: true, Reason: errs.ReasonHashMismatch}
	}
	return nil
}
