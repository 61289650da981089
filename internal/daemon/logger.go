package daemon

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// newLogger returns the daemon's logger: text or JSON on w, at the level lv
// holds (a reload changes lv in place, so every component's logger follows).
// Any string attribute or error that contains the current session token has
// the token masked: the token must never reach a log, whoever logs it.
func newLogger(w io.Writer, format string, lv *slog.LevelVar, token func() string) *slog.Logger {
	o := &slog.HandlerOptions{
		Level: lv,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			return redact(a, token())
		},
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

const redacted = "[redacted]"

// minSecret is the shortest token masked; a shorter one would mask common
// words in ordinary messages and is no real secret anyway.
const minSecret = 6

func redact(a slog.Attr, secret string) slog.Attr {
	if len(secret) < minSecret {
		return a
	}
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if s := v.String(); strings.Contains(s, secret) {
			return slog.String(a.Key, strings.ReplaceAll(s, secret, redacted))
		}
	case slog.KindAny:
		var s string
		switch x := v.Any().(type) {
		case error:
			s = x.Error()
		case fmt.Stringer:
			s = x.String()
		default:
			return a
		}
		if strings.Contains(s, secret) {
			return slog.String(a.Key, strings.ReplaceAll(s, secret, redacted))
		}
	}
	return a
}
