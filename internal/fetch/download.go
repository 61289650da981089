package fetch

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/manifest"
)

// Sink receives one blob's bytes; the store's ingest writer implements it.
// Download calls it from one goroutine at a time.
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
	Background  bool   // background work (when ctx has no WithBackground mark): see gate and bandwidth
}

// errTooLong marks a body longer than its asset's size.
var errTooLong = errors.New("body longer than the asset's size")

// Download fills sink until it holds exactly Asset.Size bytes whose sha256
// is Asset.SHA256, resuming from sink.Size() with Range. progress gets byte
// deltas (negative after a restart). Returns nil only when the sink holds
// the verified bytes. ENOSPC from the sink is failedToDownloadAvatarAssets
// reason insufficientStorage, not retried.
//
// A sink that already holds Size bytes is verified without a request. After
// a size or hash mismatch the sink is truncated and the blob downloaded
// again, up to MaxHashRetries times.
func (c *Client) Download(ctx context.Context, b Blob, sink Sink, progress func(delta int64)) error {
	if progress == nil {
		progress = func(int64) {}
	}
	a := b.Asset
	t := target{kind: kindBlob, avatarID: b.AvatarID, asset: a.Path, token: c.cfg.Token, tokenProblem: c.cfg.TokenProblem}
	if !manifest.ValidDigest(a.SHA256) || a.Size < 0 {
		e := t.err(errcode.FailedToDownloadAvatarAssets, errcode.ReasonInvalidManifest, false, "asset %q has no valid size and sha256", a.Path)
		e.Phase = errcode.PhaseLocal
		return e
	}
	urls, err := c.blobURLs(t, b)
	if err != nil {
		return err
	}
	if _, ok := ctx.Value(classKey).(func() bool); !ok && b.Background {
		ctx = WithBackground(ctx, func() bool { return true })
	}
	bg, err := c.gate.acquireClass(ctx, backgroundOf(ctx))
	if err != nil {
		return t.cancelled(ctx)
	}
	defer c.gate.release(bg)

	for try := 0; ; try++ {
		err := c.fill(ctx, t, urls, a, sink, progress)
		if err == nil {
			if err = verify(t, a, sink); err == nil {
				return nil
			}
		} else if !errors.Is(err, errTooLong) {
			return err
		}
		if try >= c.cfg.MaxHashRetries {
			return err
		}
		c.log.Warn("downloaded asset does not match its manifest; downloading it again",
			"avatar", b.AvatarID, "asset", a.Path, "err", err)
		c.ctr.retries.Add(1)
		traceOf(ctx).retrying(try+2, c.cfg.MaxHashRetries+1, cause(nil, err))
		if err := truncate(t, sink, progress); err != nil {
			return err
		}
	}
}

func verify(t target, a manifest.Asset, sink Sink) error {
	var e *errcode.Error
	if n := sink.Size(); n != a.Size {
		e = t.err(errcode.FailedToDownloadAvatarAssets, errcode.ReasonSizeMismatch, true, "%s: got %d bytes, want %d", t.what(), n, a.Size)
	} else if d := sink.Digest(); d != a.SHA256 {
		e = t.err(errcode.FailedToDownloadAvatarAssets, errcode.ReasonHashMismatch, true, "%s: sha256 %s, want %s", t.what(), d, a.SHA256)
	} else {
		return nil
	}
	e.Phase = errcode.PhaseVerify
	return e
}

func truncate(t target, sink Sink, progress func(int64)) error {
	n := sink.Size()
	if err := sink.Truncate(); err != nil {
		return t.storage(err)
	}
	if n != 0 {
		progress(-n)
	}
	return nil
}

// fill brings sink to Size bytes from the first URL that answers, moving
// to the next after a network failure or 5xx.
func (c *Client) fill(ctx context.Context, t target, urls []string, a manifest.Asset, sink Sink, progress func(int64)) error {
	if n := sink.Size(); n > a.Size {
		if err := truncate(t, sink, progress); err != nil {
			return err
		}
	} else if n == a.Size {
		return nil
	}
	var err error
	for i, u := range urls {
		if err = c.fillFrom(ctx, t, u, a, sink, progress); err == nil {
			return nil
		}
		if i+1 < len(urls) && failover(err) {
			c.log.Warn("origin failed; trying the next mirror", "avatar", t.avatarID, "asset", a.Path, "err", err)
			continue
		}
		break
	}
	return err
}

func (c *Client) fillFrom(ctx context.Context, t target, u string, a manifest.Asset, sink Sink, progress func(int64)) error {
	mirror := c.onMirror(u)
	req, err := retryablehttp.NewRequestWithContext(context.WithValue(ctx, blobKey, new(blobRequest)), http.MethodGet, u, nil)
	if err != nil {
		return t.err(t.fail(), "", false, "%s: bad URL: %v", t.what(), err)
	}
	// raw bytes, so that offsets and the hash are the file's
	req.Header.Set("Accept-Encoding", "identity")
	setRange(req.Header, sink.Size())
	var handled *http.Response
	req.SetResponseHandler(func(resp *http.Response) error {
		handled = resp
		defer closeBody(resp)
		return c.receive(t, resp, a, sink, c.counting(mirror, resp.Header, progress))
	})
	resp, err := c.retryClient(ctx, func(r *http.Request) error {
		setRange(r.Header, sink.Size())
		return nil
	}).Do(req)
	return c.finish(ctx, t, resp, handled, err)
}

func setRange(h http.Header, off int64) {
	if off > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	} else {
		h.Del("Range")
	}
}

// receive takes one answer to a blob request.
func (c *Client) receive(t target, resp *http.Response, a manifest.Asset, sink Sink, progress func(int64)) error {
	off := sink.Size()
	switch resp.StatusCode {
	case http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != off {
			if err := truncate(t, sink, progress); err != nil {
				return &stop{err}
			}
			return t.err(t.fail(), errcode.ReasonNetwork, true, "%s: asked for bytes from %d, got Content-Range %q; restarting",
				t.what(), off, resp.Header.Get("Content-Range"))
		}
	case http.StatusOK:
		if off > 0 {
			if err := truncate(t, sink, progress); err != nil {
				return &stop{err}
			}
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if off == a.Size {
			return nil
		}
		if err := truncate(t, sink, progress); err != nil {
			return &stop{err}
		}
		return t.err(t.fail(), errcode.ReasonSizeMismatch, true, "%s: origin has no bytes from %d of %d; restarting", t.what(), off, a.Size)
	default:
		return &stop{t.status(resp, c.cfg.RetryWaitMax)}
	}
	if n := resp.ContentLength; n > a.Size-sink.Size() {
		e := t.err(errcode.FailedToDownloadAvatarAssets, errcode.ReasonSizeMismatch, true,
			"%s: the origin sends %d bytes from %d, more than the size %d", t.what(), n, sink.Size(), a.Size)
		e.Err = errTooLong
		return &stop{e}
	}
	return c.copyBody(t, resp.Body, a, sink, progress)
}

// rangeStart parses the first byte of "bytes first-last/size".
func rangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(strings.TrimSpace(v), "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	return n, err == nil && n >= 0
}
