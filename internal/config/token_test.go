package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSessionToken(t *testing.T) {
	const secret = "tok-3f9a.b_c"
	t.Run("configured file, whitespace trimmed", func(t *testing.T) {
		c := Default()
		c.Origin.SessionTokenFile = write(t, "token", "\n  "+secret+" \r\n", 0o600)
		tok, err := c.ReadSessionToken(nil)
		if err != nil || tok.Value != secret || tok.Warning != "" || tok.Path != c.Origin.SessionTokenFile {
			t.Errorf("got %+v, %v", tok, err)
		}
		s, err := c.SessionToken(nil)
		if err != nil || s != secret {
			t.Errorf("SessionToken = %q, %v", s, err)
		}
	})
	t.Run("configured file missing is an error", func(t *testing.T) {
		c := Default()
		c.Origin.SessionTokenFile = filepath.Join(t.TempDir(), "none")
		_, err := c.SessionToken(nil)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("got %v", err)
		}
	})
	t.Run("world-readable file is returned with a warning", func(t *testing.T) {
		c := Default()
		c.Origin.SessionTokenFile = write(t, "token", secret, 0o644)
		tok, err := c.ReadSessionToken(nil)
		if err != nil || tok.Value != secret || !strings.Contains(tok.Warning, "readable by every user") {
			t.Errorf("got %+v, %v", tok, err)
		}
		if strings.Contains(tok.Warning, secret) {
			t.Error("the warning shows the token")
		}
	})
	t.Run("credentials directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "session-token"), []byte(secret+"\n"), 0o400); err != nil {
			t.Fatal(err)
		}
		c := Default()
		s, err := c.SessionToken(env(EnvCredentials, dir))
		if err != nil || s != secret {
			t.Errorf("got %q, %v", s, err)
		}
		if p := c.TokenFile(env(EnvCredentials, dir)); p != filepath.Join(dir, "session-token") {
			t.Errorf("TokenFile = %q", p)
		}
		// The configured file wins over the credential.
		c.Origin.SessionTokenFile = write(t, "token", "other", 0o600)
		if s, _ := c.SessionToken(env(EnvCredentials, dir)); s != "other" {
			t.Errorf("got %q, want the configured file's token", s)
		}
	})
	t.Run("no credential is no token", func(t *testing.T) {
		s, err := Default().SessionToken(env(EnvCredentials, t.TempDir()))
		if err != nil || s != "" {
			t.Errorf("got %q, %v", s, err)
		}
		s, err = Default().SessionToken(nil)
		if err != nil || s != "" {
			t.Errorf("got %q, %v", s, err)
		}
	})
	t.Run("empty credential is no token", func(t *testing.T) {
		// The unit's SetCredential=session-token:\n default when the file is missing.
		c := Default()
		c.Origin.SessionTokenFile = write(t, "token", "\n", 0o600)
		s, err := c.SessionToken(nil)
		if err != nil || s != "" {
			t.Errorf("got %q, %v", s, err)
		}
	})
	t.Run("control character refused", func(t *testing.T) {
		c := Default()
		c.Origin.SessionTokenFile = write(t, "token", "abc\r\nX-Evil: 1", 0o600)
		_, err := c.SessionToken(nil)
		if err == nil || strings.Contains(err.Error(), "abc") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("directory refused", func(t *testing.T) {
		c := Default()
		c.Origin.SessionTokenFile = t.TempDir()
		if _, err := c.SessionToken(nil); err == nil {
			t.Error("a directory was read as a token")
		}
	})
	t.Run("never logged", func(t *testing.T) {
		tok := Token{Value: secret, Path: "/etc/assetd/session-token"}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("token", "token", tok)
		if strings.Contains(buf.String(), secret) || strings.Contains(tok.String(), secret) {
			t.Errorf("token leaked: %s %s", buf.String(), tok)
		}
	})
}

func TestLogger(t *testing.T) {
	c := Default()
	c.Log = Log{Level: "warn", Format: "json"}
	var buf bytes.Buffer
	log := c.Logger(&buf)
	log.Info("hidden")
	log.Warn("shown", "config", c)
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("not one JSON record: %v: %s", err, buf.String())
	}
	if rec["msg"] != "shown" {
		t.Errorf("record %v", rec)
	}
	cfg, _ := rec["config"].(map[string]any)
	if cfg["socket"] != c.API.Socket {
		t.Errorf("config logged as %v", rec["config"])
	}

	c.Log = Log{Level: "debug", Format: "text"}
	buf.Reset()
	c.Logger(&buf).Debug("dbg")
	if !strings.Contains(buf.String(), "level=DEBUG msg=dbg") {
		t.Errorf("text log %q", buf.String())
	}
}
