package fetch

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
)

// stop ends the retries of one request at once: the response handler saw
// an answer that another attempt will not change (a 4xx, a body longer
// than its size, a full disk).
type stop struct{ err error }

func (s *stop) Error() string { return s.err.Error() }
func (s *stop) Unwrap() error { return s.err }

// retryClient returns the retry layer for one request made with ctx.
// prepare, if not nil, updates the request before each retry (the Range of
// a resume). A Trace in ctx hears of each retry before its wait.
func (c *Client) retryClient(ctx context.Context, prepare retryablehttp.PrepareRetry) *retryablehttp.Client {
	check, backoff := c.checkRetry, retryablehttp.Backoff(c.backoff)
	if tr := traceOf(ctx); tr != nil {
		var last string // why the attempt that is retried failed
		check = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
			retry, cerr := c.checkRetry(ctx, resp, err)
			if retry {
				last = cause(resp, err)
			}
			return retry, cerr
		}
		// Called only when a retry follows; i is the failed attempt's index.
		backoff = func(lo, hi time.Duration, i int, resp *http.Response) time.Duration {
			tr.retrying(i+2, c.cfg.MaxRetries+1, last)
			return c.backoff(lo, hi, i, resp)
		}
	}
	return &retryablehttp.Client{
		HTTPClient:     c.http,
		Logger:         leveled{c.log, c.cfg.Token},
		RetryWaitMin:   c.cfg.RetryWaitMin,
		RetryWaitMax:   c.cfg.RetryWaitMax,
		RetryMax:       c.cfg.MaxRetries,
		CheckRetry:     check,
		Backoff:        backoff,
		ErrorHandler:   retryablehttp.PassthroughErrorHandler,
		RequestLogHook: c.countRetry,
		PrepareRetry:   prepare,
	}
}

// checkRetry is the retry policy of the origin protocol's error table:
// network failures, 408, 429 and 5xx are retried; other answers and a
// cancelled context are final; a Retry-After longer than RetryWaitMax ends
// the retries at once.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, nil
	}
	if err != nil {
		return retryable(err), nil
	}
	switch code := resp.StatusCode; {
	case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable:
		if d, ok := retryAfter(resp); ok && d > c.cfg.RetryWaitMax {
			return false, nil
		}
		return true, nil
	case code == http.StatusRequestTimeout || code >= 500:
		return true, nil
	}
	return false, nil
}

func retryable(err error) bool {
	var s *stop
	if errors.As(err, &s) || errors.Is(err, errTooManyRedirects) || errors.Is(err, errInsecureRedirect) || errors.Is(err, errLocalTarget) ||
		untrustedCertificate(err) {
		return false
	}
	var e *errcode.Error
	if errors.As(err, &e) {
		return e.Transient
	}
	return true
}

// backoff is exponential from RetryWaitMin to RetryWaitMax with jitter
// (a wait between half and all of the step), or the origin's Retry-After.
func (c *Client) backoff(lo, hi time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := retryAfter(resp); ok {
			return min(max(d, lo), hi)
		}
	}
	d := hi
	if attempt < 32 {
		d = min(lo<<attempt, hi)
	}
	if d <= 0 {
		return lo
	}
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses Retry-After: delay-seconds or an HTTP-date.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		if s > int64(365*24*time.Hour/time.Second) {
			return 365 * 24 * time.Hour, true
		}
		return time.Duration(s) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return max(time.Until(t), 0), true
}

func (c *Client) countRetry(_ retryablehttp.Logger, _ *http.Request, attempt int) {
	if attempt > 0 {
		c.ctr.retries.Add(1)
	}
}

// leveled adapts slog to retryablehttp.LeveledLogger. The library logs
// each failed attempt as an error; the caller reports the final failure
// once, so an attempt that will be retried is info, and one that ends the
// request (cancelled, or an answer another attempt will not change) is
// debug: a cancel logs no warning. Nothing it logs carries a header, but its
// errors and URLs may carry what an origin sent (a redirect's Location):
// the token is redacted from every value.
type leveled struct {
	l     *slog.Logger
	token func() string
}

func (a leveled) Error(msg string, kv ...any) {
	for _, v := range kv {
		if err, ok := v.(error); ok && (cancelled(err) || !retryable(err)) {
			a.l.Debug(msg, a.redact(kv)...)
			return
		}
	}
	a.l.Info(msg, a.redact(kv)...)
}

// cancelled reports whether err is a cancellation: the caller's doing,
// not the origin's.
func cancelled(err error) bool {
	return errors.Is(err, context.Canceled) || errs.CodeOf(err) == errcode.Cancelled
}
func (a leveled) Warn(msg string, kv ...any)  { a.l.Warn(msg, a.redact(kv)...) }
func (a leveled) Info(msg string, kv ...any)  { a.l.Info(msg, a.redact(kv)...) }
func (a leveled) Debug(msg string, kv ...any) { a.l.Debug(msg, a.redact(kv)...) }

func (a leveled) redact(kv []any) []any {
	t := target{token: a.token}
	out := make([]any, len(kv))
	for i, v := range kv {
		switch v := v.(type) {
		case string:
			out[i] = t.redact(v)
		case error:
			out[i] = t.redact(v.Error())
		case *url.URL:
			out[i] = t.redact(v.Redacted())
		default:
			out[i] = v
		}
	}
	return out
}

var _ retryablehttp.LeveledLogger = leveled{}
