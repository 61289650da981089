package fetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/assetd/assetd/apitype/errcode"
)

var (
	errTooManyRedirects = fmt.Errorf("stopped after %d redirects", MaxRedirects)
	errInsecureRedirect = errors.New("redirect to a refused URL")
)

// checkRedirect allows at most MaxRedirects redirects, each to http(s)
// that the origin rules allow. Headers for the origin are set per hop by
// the transport, so they never follow a redirect to another host.
func (c *Client) checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > MaxRedirects {
		return errTooManyRedirects
	}
	if !c.reachable(req.URL) {
		return fmt.Errorf("%w: %s", errInsecureRedirect, req.URL.Redacted())
	}
	return nil
}

type kind int

const (
	kindManifest kind = iota
	kindBlob
)

// target says what a request was for, so that a failure becomes the
// error the protocol's table names.
type target struct {
	kind     kind
	avatarID string
	asset    string
	token    func() string
	base     string // the origin's base URL (origin.url or a mirror), redacted

	tokenProblem func() string // see Config.TokenProblem
}

func (t target) fail() errcode.Code {
	if t.kind == kindManifest {
		return errcode.FailedToFetchAvatarMetadata
	}
	return errcode.FailedToDownloadAvatarAssets
}

func (t target) phase() errcode.Phase {
	if t.kind == kindManifest {
		return errcode.PhaseMetadata
	}
	return errcode.PhaseDownload
}

func (t target) what() string {
	if t.kind == kindManifest {
		return "manifest"
	}
	return "asset " + t.asset
}

func (t target) err(code errcode.Code, reason string, transient bool, format string, args ...any) *errcode.Error {
	return &errcode.Error{Code: code, Phase: t.phase(), AvatarID: t.avatarID, Asset: t.asset,
		Reason: reason, Transient: transient, Message: t.redact(fmt.Sprintf(format, args...))}
}

// redact keeps the session token out of messages an origin could echo it
// into: the whole token, and its first bytes where a text was cut short
// ("..." marks a cut, here and in the manifest package's messages).
func (t target) redact(s string) string {
	if t.token == nil {
		return s
	}
	tok := t.token()
	if len(tok) < 4 {
		return s
	}
	s = strings.ReplaceAll(s, tok, redacted)
	for i := 0; ; {
		j := strings.Index(s[i:], "...")
		if j < 0 {
			return s
		}
		j += i
		for k := min(len(tok)-1, j); k >= 4; k-- {
			if s[j-k:j] == tok[:k] {
				s = s[:j-k] + redacted + s[j:]
				j += len(redacted) - k
				break
			}
		}
		i = j + len("...")
	}
}

const redacted = "[redacted]"

func (t target) cancelled(ctx context.Context) *errcode.Error {
	e := t.err(errcode.Cancelled, "", false, "%s: cancelled", t.what())
	e.Err = ctx.Err()
	return e
}

// network maps a failure with no HTTP answer: refused, reset, DNS, TLS,
// timeouts, a truncated body, a stall.
func (t target) network(err error) *errcode.Error {
	var e *errcode.Error
	if errors.As(err, &e) {
		return e
	}
	reason, transient := errcode.ReasonNetwork, true
	var ne net.Error
	switch {
	case errors.Is(err, errTooManyRedirects):
		reason, transient = errcode.ReasonTooManyRedirects, false
	case errors.Is(err, errInsecureRedirect), errors.Is(err, errLocalTarget):
		reason, transient = errcode.ReasonInsecure, false
	case errors.Is(err, errStalled):
		reason = errcode.ReasonStalled
	case errors.Is(err, errAttemptTimeout) || errors.As(err, &ne) && ne.Timeout():
		reason = errcode.ReasonTimeout
	case untrustedCertificate(err):
		e = t.err(t.fail(), errcode.ReasonInsecure, false, "%s: %v", t.what(), err)
		e.Err = err
		e.Hint = "the server's TLS certificate is not trusted: for a site cache signed by a site CA, set origin.ca_file to the CA's PEM bundle"
		return e
	}
	e = t.err(t.fail(), reason, transient, "%s: %v", t.what(), err)
	e.Err = err
	return e
}

// untrustedCertificate reports whether err is a TLS certificate the
// client does not trust (unknown authority, wrong host, expired): not
// transient, and often a missing origin.ca_file.
func untrustedCertificate(err error) bool {
	var (
		ve *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		he x509.HostnameError
		ci x509.CertificateInvalidError
	)
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// storage maps a failure of the sink. A sink that already says what went
// wrong (the store's own codes and reasons) is believed.
func (t target) storage(err error) *errcode.Error {
	var own *errcode.Error
	if errors.As(err, &own) && own.Reason != "" {
		return own.WithAvatar(t.avatarID)
	}
	e := t.err(errcode.FailedToDownloadAvatarAssets, "", false, "%s: writing: %v", t.what(), err)
	e.Phase, e.Err = errcode.PhaseStore, err
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		e.Reason = errcode.ReasonInsufficientStorage
	}
	return e
}

// serverBody is the origin's JSON error body.
type serverBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Bounds of the origin's text in an error (after redaction).
const (
	maxServerMessage = 512
	maxServerCode    = 64
)

// readServerBody reads the origin's JSON error body. Its text is the
// origin's, which may echo what it was sent: the token is redacted from
// each field before anything is cut (a cut through an echo would leave a
// prefix the redaction no longer finds), control characters are blanked
// (the CLI prints the message), and the code is cut to maxServerCode
// characters of [A-Za-z0-9._-].
func readServerBody(resp *http.Response, redact func(string) string) (serverBody, bool) {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	var b serverBody
	if json.Unmarshal(data, &b) != nil || b.Code == "" && b.Message == "" {
		return serverBody{}, false
	}
	b.Code = sanitizeCode(redact(b.Code))
	b.Message = clip(printable(redact(b.Message)), maxServerMessage)
	return b, true
}

// sanitizeCode maps every character outside [A-Za-z0-9._-] to '_' and
// keeps at most maxServerCode of them.
func sanitizeCode(s string) string {
	b := make([]byte, 0, min(len(s), maxServerCode))
	for _, r := range s {
		if len(b) == maxServerCode {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '.', r == '_', r == '-':
			b = append(b, byte(r))
		default:
			b = append(b, '_')
		}
	}
	return string(b)
}

// printable blanks control characters (escape sequences, newlines).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func accountCode(c errcode.Code) bool { return c.Known() && c.Class() == errcode.ClassAccount }

// status maps an HTTP answer that is not the resource, exactly as the
// origin protocol's table says. It reads at most errorBodyLimit bytes. A
// 429 whose Retry-After is longer than retryWaitMax has reason
// retryAfterTooLong.
func (t target) status(resp *http.Response, retryWaitMax time.Duration) *errcode.Error {
	body, isJSON := readServerBody(resp, t.redact)
	st := resp.StatusCode
	server := errcode.Code(body.Code)
	var code errcode.Code
	reason, transient := "", false
	switch {
	case st == http.StatusBadRequest:
		code = errcode.SessionTokenInvalid
		if accountCode(server) {
			code = server
		}
	case st == http.StatusUnauthorized:
		code = errcode.SessionTokenExpired
	case st == http.StatusPaymentRequired:
		code = errcode.InsufficientBalance
	case st == http.StatusForbidden:
		code = errcode.AppIDUnrecognized
		if server == errcode.SessionTokenInvalid {
			code = server
		}
	case st == http.StatusNotFound && t.kind == kindManifest:
		code = errcode.AvatarIDUnrecognized
		switch server {
		case errcode.AppIDUnrecognized:
			code = server
		case errcode.AvatarIDUnrecognized:
		default:
			return t.plainNotFound(resp, body)
		}
	case st == http.StatusRequestTimeout:
		code, transient = errcode.SessionTimeout, true
	case st == http.StatusTooManyRequests:
		code, transient = errcode.ConcurrentLimitExceeded, true
		if d, ok := retryAfter(resp); ok && d > retryWaitMax {
			reason = errcode.ReasonRetryAfterTooLong
		}
	case st >= 500 && t.kind == kindManifest && isJSON:
		code, transient = errcode.ServerError, true
	case st >= 500:
		code, reason, transient = t.fail(), fmt.Sprintf("http%d", st), true
	default:
		code, reason = t.fail(), fmt.Sprintf("http%d", st)
	}
	msg := fmt.Sprintf("%s: origin answered %s", t.what(), resp.Status)
	if body.Message != "" {
		msg += ": " + body.Message
	}
	if p := t.unreadableToken(code); p != "" {
		reason = errcode.ReasonTokenFile
		msg += "; no token was sent, since origin.session_token_file could not be read: " + p
	}
	e := t.err(code, reason, transient, "%s", msg)
	e.HTTPStatus, e.ServerCode = st, body.Code
	return e
}

// unreadableToken is why the token file could not be read, when that is
// why the origin refused the credentials: an account code on a request
// that carried no token.
func (t target) unreadableToken(code errcode.Code) string {
	if t.tokenProblem == nil || (code != errcode.SessionTokenExpired && code != errcode.SessionTokenInvalid) {
		return ""
	}
	if t.token != nil && t.token() != "" {
		return ""
	}
	return t.tokenProblem()
}

// plainNotFound is a manifest's 404 that does not say avatarIDUnrecognized
// in an origin's JSON body: a plain web server or a wrong path prefix in
// origin.url answers so as well as an origin without the avatar. The code
// stays the protocol's; the message names both URLs, and the reason lets
// the hint point at origin.url.
func (t target) plainNotFound(resp *http.Response, body serverBody) *errcode.Error {
	without := "without an origin's error body"
	if body.Code != "" {
		without = fmt.Sprintf("with code %q, not avatarIDUnrecognized", body.Code)
	}
	e := t.err(errcode.AvatarIDUnrecognized, errcode.ReasonPlainNotFound, false,
		"manifest: GET %s answered %s %s: origin.url (%s) may be a plain web server or have a wrong path prefix (such as .../v1), or the avatar is not published there",
		requestURL(resp), resp.Status, without, t.base)
	e.HTTPStatus, e.ServerCode = resp.StatusCode, body.Code
	return e
}

// html reports whether a manifest answer is a web page: a captive
// portal, a login page, a web site at origin.url.
func html(resp *http.Response, raw []byte) bool {
	ct := strings.ToLower(resp.Header.Get("Content-Type"))
	if strings.HasPrefix(ct, "text/html") || strings.HasPrefix(ct, "application/xhtml") {
		return true
	}
	head := strings.ToLower(strings.TrimSpace(string(raw[:min(len(raw), 512)])))
	return strings.HasPrefix(head, "<!doctype html") || strings.HasPrefix(head, "<html")
}

// htmlAnswer is a web page where a manifest was asked for.
func (t target) htmlAnswer(resp *http.Response) *errcode.Error {
	e := t.err(t.fail(), errcode.ReasonHTMLAnswer, true,
		"manifest: GET %s answered an HTML page (%s %s), not a manifest: a captive portal or a login page may be in the way, or origin.url (%s) is a web site, not an origin",
		requestURL(resp), resp.Status, resp.Header.Get("Content-Type"), t.base)
	e.HTTPStatus = resp.StatusCode
	return e
}

func requestURL(resp *http.Response) string {
	if resp.Request == nil || resp.Request.URL == nil {
		return "(unknown URL)"
	}
	return resp.Request.URL.Redacted()
}
