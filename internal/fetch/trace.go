package fetch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/assetd/assetd/apitype/errcode"
)

// Trace reports what a request is waiting for, as it happens, so that a
// caller can show it (a load's progress). Its funcs are called from the
// goroutine of the request; nil ones are skipped. See WithTrace.
type Trace struct {
	// Queued is called with true when a download waits for a slot under
	// Config.Concurrency, and with false when it has one or gave up.
	Queued func(queued bool)
	// Retrying is called before the wait for attempt (2 is the first
	// retry) of maxAttempts, with why the attempt before failed in a few
	// words ("connection refused", "HTTP 503 Service Unavailable").
	Retrying func(attempt, maxAttempts int, cause string)
}

type traceKey struct{}

// WithTrace returns ctx carrying t: the requests made with it report to t.
func WithTrace(ctx context.Context, t *Trace) context.Context {
	return context.WithValue(ctx, traceKey{}, t)
}

func traceOf(ctx context.Context) *Trace {
	t, _ := ctx.Value(traceKey{}).(*Trace)
	return t
}

func (t *Trace) queued(q bool) {
	if t != nil && t.Queued != nil {
		t.Queued(q)
	}
}

func (t *Trace) retrying(attempt, maxAttempts int, cause string) {
	if t != nil && t.Retrying != nil {
		t.Retrying(attempt, maxAttempts, cause)
	}
}

// reasonWords say a reason as a user reads it.
var reasonWords = map[string]string{
	errcode.ReasonHashMismatch: "sha256 mismatch",
	errcode.ReasonSizeMismatch: "size mismatch",
	errcode.ReasonStalled:      "stalled",
	errcode.ReasonTimeout:      "timeout",
}

// maxCause bounds the text of a cause.
const maxCause = 120

// cause says in a few words why an attempt failed: the system's words for
// a network error, the status line of an HTTP answer.
func cause(resp *http.Response, err error) string {
	s := causeText(resp, err)
	if len(s) > maxCause {
		s = s[:maxCause] + "..."
	}
	return s
}

func causeText(resp *http.Response, err error) string {
	if err == nil {
		if resp != nil {
			return "HTTP " + resp.Status
		}
		return "failed"
	}
	var e *errcode.Error
	if errors.As(err, &e) && e.Err == nil {
		if e.HTTPStatus != 0 && resp != nil {
			return "HTTP " + resp.Status
		}
		if w, ok := reasonWords[e.Reason]; ok {
			return w
		}
		if e.Reason != "" {
			return e.Reason
		}
	}
	var errno syscall.Errno
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.As(err, &errno):
		return errno.Error()
	case errors.As(err, &dns):
		if dns.IsNotFound {
			return "no such host " + dns.Name
		}
		return "DNS: " + dns.Err
	case errors.Is(err, errStalled):
		return "stalled"
	case errors.Is(err, errAttemptTimeout) || errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	s := err.Error()
	// *url.Error says `Get "URL": why`; the URL is in the logs.
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}
