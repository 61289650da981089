package daemon

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestLoggerMasksToken(t *testing.T) {
	const secret = "tok-3f9a7c1e5b"
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		lv := new(slog.LevelVar)
		log := newLogger(&buf, format, lv, func() string { return secret })
		log.Info("got "+secret, "header", "Bearer "+secret, "err", fmt.Errorf("wrap: %w", errors.New("bad token "+secret)))
		log.WithGroup("g").Info("x", "nested", secret)
		out := buf.String()
		if strings.Contains(out, secret) {
			t.Errorf("%s log shows the token:\n%s", format, out)
		}
		if !strings.Contains(out, redacted) {
			t.Errorf("%s log has no mask:\n%s", format, out)
		}
	}
}

func TestLoggerLevelFollowsLevelVar(t *testing.T) {
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	log := newLogger(&buf, "text", lv, func() string { return "" }).With("component", "x")
	log.Debug("hidden")
	lv.Set(slog.LevelDebug)
	log.Debug("shown")
	if out := buf.String(); strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Errorf("log = %q", out)
	}
}
