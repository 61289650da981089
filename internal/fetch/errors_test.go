package fetch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/testkit"
)

// hangUp answers nothing: the connection is closed before any response.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// truncated promises 1000 bytes and sends 10.
func truncated(w http.ResponseWriter, _ *http.Request) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	writeRaw(buf, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789")
}

func writeRaw(buf *bufio.ReadWriter, s string) {
	buf.WriteString(s)
	buf.Flush()
}

func status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(code)
		w.Write([]byte(body))
	}
}

// TestErrorTable has one row per row of docs/origin-protocol.md §3 (and the
// rows' variants), counting the requests at the origin.
func TestErrorTable(t *testing.T) {
	const maxRetries = 2
	all := maxRetries + 1
	tests := []struct {
		name       string
		blob       bool
		handler    http.HandlerFunc
		code       errcode.Code
		reason     string
		transient  bool
		requests   int
		httpStatus int
		serverCode string
	}{
		{"400", false, status(400, ""), errcode.SessionTokenInvalid, "", false, 1, 400, ""},
		{"400 body names an account code", false, status(400, `{"code":"appIDUnrecognized","message":"no such app"}`), errcode.AppIDUnrecognized, "", false, 1, 400, "appIDUnrecognized"},
		{"400 body names another code", false, status(400, `{"code":"serverError"}`), errcode.SessionTokenInvalid, "", false, 1, 400, "serverError"},
		{"401", false, status(401, ""), errcode.SessionTokenExpired, "", false, 1, 401, ""},
		{"402", false, status(402, ""), errcode.InsufficientBalance, "", false, 1, 402, ""},
		{"403", false, status(403, ""), errcode.AppIDUnrecognized, "", false, 1, 403, ""},
		{"403 body sessionTokenInvalid", false, status(403, `{"code":"sessionTokenInvalid"}`), errcode.SessionTokenInvalid, "", false, 1, 403, "sessionTokenInvalid"},
		{"404 manifest", false, status(404, ""), errcode.AvatarIDUnrecognized, errcode.ReasonPlainNotFound, false, 1, 404, ""},
		{"404 manifest body avatarIDUnrecognized", false, status(404, `{"code":"avatarIDUnrecognized"}`), errcode.AvatarIDUnrecognized, "", false, 1, 404, "avatarIDUnrecognized"},
		{"404 manifest body notFound", false, status(404, `{"code":"notFound"}`), errcode.AvatarIDUnrecognized, errcode.ReasonPlainNotFound, false, 1, 404, "notFound"},
		{"404 manifest body appIDUnrecognized", false, status(404, `{"code":"appIDUnrecognized"}`), errcode.AppIDUnrecognized, "", false, 1, 404, "appIDUnrecognized"},
		{"404 blob", true, status(404, ""), errcode.FailedToDownloadAvatarAssets, "http404", false, 1, 404, ""},
		{"401 blob", true, status(401, ""), errcode.SessionTokenExpired, "", false, 1, 401, ""},
		{"408", false, status(408, ""), errcode.SessionTimeout, "", true, all, 408, ""},
		{"429", false, status(429, ""), errcode.ConcurrentLimitExceeded, "", true, all, 429, ""},
		{"429 blob", true, status(429, ""), errcode.ConcurrentLimitExceeded, "", true, all, 429, ""},
		{"500 manifest JSON body", false, status(500, `{"code":"internal","message":"db down"}`), errcode.ServerError, "", true, all, 500, "internal"},
		{"502 manifest no JSON", false, status(502, "<html>bad gateway</html>"), errcode.FailedToFetchAvatarMetadata, "http502", true, all, 502, ""},
		{"503 blob", true, status(503, ""), errcode.FailedToDownloadAvatarAssets, "http503", true, all, 503, ""},
		{"410 manifest", false, status(410, ""), errcode.FailedToFetchAvatarMetadata, "http410", false, 1, 410, ""},
		{"connection reset manifest", false, hangUp, errcode.FailedToFetchAvatarMetadata, errcode.ReasonNetwork, true, all, 0, ""},
		{"connection reset blob", true, hangUp, errcode.FailedToDownloadAvatarAssets, errcode.ReasonNetwork, true, all, 0, ""},
		{"truncated manifest", false, truncated, errcode.FailedToFetchAvatarMetadata, errcode.ReasonNetwork, true, all, 0, ""},
		{"truncated blob", true, truncated, errcode.FailedToDownloadAvatarAssets, errcode.ReasonNetwork, true, all, 0, ""},
		{"unparsable manifest", false, status(200, "{portal"), errcode.FailedToFetchAvatarMetadata, errcode.ReasonInvalidManifest, true, all, 0, ""},
		{"html manifest", false, status(200, "<html>portal</html>"), errcode.FailedToFetchAvatarMetadata, errcode.ReasonHTMLAnswer, true, all, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := testkit.NewOrigin(t)
			const path = "/res"
			o.Handle(path, tt.handler)
			c := newClient(t, testConfig(o.URL()))
			data := randBytes(2000, 1)
			var err error
			if tt.blob {
				a := assetOf("model.splat", data)
				a.URL = path
				err = c.Download(ctxT(t), Blob{AvatarID: "rohan", Asset: a}, newSink(t), nil)
			} else {
				o.Handle("/v1/avatars/rohan/manifest", tt.handler)
				_, err = c.Manifest(ctxT(t), "rohan", "")
			}
			var e *errcode.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want an *errcode.Error", err)
			}
			if e.Code != tt.code || e.Reason != tt.reason || e.Transient != tt.transient ||
				e.HTTPStatus != tt.httpStatus || e.ServerCode != tt.serverCode {
				t.Errorf("got code=%s reason=%q transient=%v status=%d serverCode=%q (%v)\nwant code=%s reason=%q transient=%v status=%d serverCode=%q",
					e.Code, e.Reason, e.Transient, e.HTTPStatus, e.ServerCode, e,
					tt.code, tt.reason, tt.transient, tt.httpStatus, tt.serverCode)
			}
			if e.AvatarID != "rohan" {
				t.Errorf("avatarId = %q", e.AvatarID)
			}
			wantPhase, wantAsset := errcode.PhaseMetadata, ""
			if tt.blob {
				wantPhase, wantAsset = errcode.PhaseDownload, "model.splat"
			}
			if e.Phase != wantPhase || e.Asset != wantAsset {
				t.Errorf("phase=%s asset=%q, want %s %q", e.Phase, e.Asset, wantPhase, wantAsset)
			}
			if n := o.TotalHits(); n != tt.requests {
				t.Errorf("origin got %d requests, want %d", n, tt.requests)
			}
			if got, want := c.Stats().Requests, uint64(tt.requests); got != want {
				t.Errorf("Stats().Requests = %d, want %d", got, want)
			}
		})
	}
}

func TestServerErrorCarriesMessage(t *testing.T) {
	o := testkit.NewOrigin(t)
	o.Handle("/v1/avatars/rohan/manifest", status(500, `{"code":"internal","message":"db down"}`))
	c := newClient(t, testConfig(o.URL()))
	_, err := c.Manifest(ctxT(t), "rohan", "")
	e := errs.From(err)
	if e.Code != errcode.ServerError || e.HTTPStatus != 500 || e.ServerCode != "internal" || !contains(e.Message, "db down") {
		t.Fatalf("err = %#v", e)
	}
}

func TestErrorBodyIsBounded(t *testing.T) {
	o := testkit.NewOrigin(t)
	o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		big := make([]byte, 1<<20)
		for i := 0; i < 64 && r.Context().Err() == nil; i++ {
			if _, err := w.Write(big); err != nil {
				return
			}
		}
	})
	c := newClient(t, testConfig(o.URL()))
	_, err := c.Manifest(ctxT(t), "rohan", "")
	if errs.CodeOf(err) != errcode.AvatarIDUnrecognized {
		t.Fatalf("err = %v", err)
	}
}

// An origin that echoes the token it was sent, as its error code and at
// the end of a message longer than the message's bound, gets no 8 bytes
// of the token (not even a prefix left by a cut) into the error, its
// serverCode or the log; an origin's code is bounded to 64 characters of
// [A-Za-z0-9._-], its message loses control characters.
func TestOriginEchoOfTokenRedacted(t *testing.T) {
	const tok = "SeCrEt-7f3a9c0b1d2e4f5a6b7c8d9e0f1a2b3c4d5e"
	for _, tt := range []struct {
		name, code, message, wantCode string
	}{
		{"token as code", tok, "expired", "_redacted_"},
		{"token straddles the code's bound", strings.Repeat("c", 60) + tok, "expired", strings.Repeat("c", 60) + "_red"},
		{"token straddles the message's bound", "sessionTokenExpired", strings.Repeat("m", maxServerMessage-20) + "Bearer " + tok, "sessionTokenExpired"},
		{"long code, control characters", strings.Repeat("x", 100), "a\x1b[31mred\nline", strings.Repeat("x", maxServerCode)},
		{"code with odd characters", "bad code/\u00e9\x00", "m", "bad_code___"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o := testkit.NewOrigin(t)
			body, _ := json.Marshal(map[string]string{"code": tt.code, "message": tt.message})
			o.Handle("/v1/avatars/rohan/manifest", status(401, string(body)))
			var logs bytes.Buffer
			var mu sync.Mutex
			cfg := testConfig(o.URL())
			cfg.Token = func() string { return tok }
			cfg.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			c := newClient(t, cfg)
			_, err := c.Manifest(ctxT(t), "rohan", "")
			e := errs.From(err)
			if e == nil || e.Code != errcode.SessionTokenExpired {
				t.Fatalf("err = %v", err)
			}
			if e.ServerCode != tt.wantCode {
				t.Errorf("serverCode = %q, want %q", e.ServerCode, tt.wantCode)
			}
			raw, _ := json.Marshal(e.Body())
			mu.Lock()
			all := string(raw) + e.Error() + logs.String()
			mu.Unlock()
			for i := 0; i+8 <= len(tok); i++ {
				if strings.Contains(all, tok[i:i+8]) {
					t.Fatalf("%q of the token is in the error or the log:\n%s", tok[i:i+8], all)
				}
			}
			if strings.ContainsAny(e.Message, "\x1b\n\x00") {
				t.Errorf("control characters in the message: %q", e.Message)
			}
		})
	}
}

// A manifest quoting the token where the manifest package's message cuts
// it (an 80-byte quote) leaves no 8 bytes of it in the error.
func TestManifestEchoOfTokenRedacted(t *testing.T) {
	const tok = "SeCrEt-7f3a9c0b1d2e4f5a6b7c8d9e0f1a2b3c4d5e"
	for _, pad := range []int{0, 50, 66, 70} {
		o := testkit.NewOrigin(t)
		bad := "ftp://" + strings.Repeat("u", pad) + tok
		o.Handle("/v1/avatars/rohan/manifest", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"schema":1,"avatarId":"rohan","version":"1","assets":[{"path":"a","size":1,"sha256":%q,"url":%q}]}`,
				strings.Repeat("0", 64), bad)
		})
		cfg := testConfig(o.URL())
		cfg.Token = func() string { return tok }
		_, err := newClient(t, cfg).Manifest(ctxT(t), "rohan", "")
		e := errs.From(err)
		if e == nil || e.Reason != errcode.ReasonInvalidManifest {
			t.Fatalf("pad %d: err = %v, want invalidManifest", pad, err)
		}
		raw, _ := json.Marshal(e.Body())
		all := string(raw) + e.Error()
		for i := 0; i+8 <= len(tok); i++ {
			if strings.Contains(all, tok[i:i+8]) {
				t.Fatalf("pad %d: %q of the token is in the error: %s", pad, tok[i:i+8], all)
			}
		}
	}
}

func TestRedactCutPrefix(t *testing.T) {
	tg := target{token: func() string { return "abcdefghijkl" }}
	for in, want := range map[string]string{
		"x abcdefghijkl y":          "x [redacted] y",
		"cut abcdefgh...":           "cut [redacted]...",
		`"uuu abcd..." and ..`:      `"uuu [redacted]..." and ..`,
		"abc...":                    "abc...",
		"no token here...":          "no token here...",
		"ab abcdef... abcdefghi...": "ab [redacted]... [redacted]...",
	} {
		if got := tg.redact(in); got != want {
			t.Errorf("redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestUnreadableTokenFile: an account answer to a request sent without a
// token, while the token file cannot be read, names that cause (reason
// tokenFileUnreadable, exit 2); with a token it is the account error.
func TestUnreadableTokenFile(t *testing.T) {
	problem := func() string { return "open /etc/assetd/token: permission denied" }
	for _, tt := range []struct {
		token, want string
	}{{"", errcode.ReasonTokenFile}, {"tok-1234", ""}} {
		t0 := target{kind: kindManifest, avatarID: "rohan", token: func() string { return tt.token }, tokenProblem: problem}
		resp := &http.Response{StatusCode: 401, Status: "401 Unauthorized", Body: http.NoBody, Header: http.Header{}}
		e := t0.status(resp, time.Second)
		if e.Code != errcode.SessionTokenExpired || e.Reason != tt.want {
			t.Errorf("token %q: %s reason %q, want %q", tt.token, e.Code, e.Reason, tt.want)
		}
		if want := tt.want != ""; strings.Contains(e.Message, "permission denied") != want || (errs.ExitCode(e) == errs.ExitUsage) != want {
			t.Errorf("token %q: message %q, exit %d", tt.token, e.Message, errs.ExitCode(e))
		}
	}
}
