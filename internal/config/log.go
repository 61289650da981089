package config

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

var levels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// SlogLevel is log.level as a slog.Level; info when unknown.
func (l Log) SlogLevel() slog.Level { return levels[l.Level] }

// Logger returns a logger writing to w per [log]: text or JSON, at the
// configured level.
func (c *Config) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.Log.SlogLevel()}
	if c.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// LogValue logs the effective configuration. It holds no secret: the
// session token is not part of a Config, only its file's path.
func (c *Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("file", c.File),
		slog.String("origin", c.Origin.URL),
		slog.Int("mirrors", len(c.Origin.Mirrors)),
		slog.String("app_id", c.Origin.AppID),
		slog.String("session_token_file", c.Origin.SessionTokenFile),
		slog.Int("trusted_keys", len(c.Origin.TrustedKeys)),
		slog.String("ca_file", c.Origin.CAFile),
		slog.Int("concurrency", c.Fetch.Concurrency),
		slog.String("store", c.Store.Dir),
		slog.String("max_bytes", c.Store.MaxBytes.String()),
		slog.String("socket", c.API.Socket),
		slog.Int("preload", len(c.Preload.Avatars)),
		slog.String("log_level", c.Log.Level),
		slog.String("metrics_listen", c.Metrics.Listen),
	)
}

// String is the effective configuration as a TOML document, every key
// included (for `assetd serve --print-config` and debugging).
func (c *Config) String() string {
	var b strings.Builder
	enc := toml.NewEncoder(&b)
	if err := enc.Encode(c); err != nil {
		return fmt.Sprintf("config: %v", err)
	}
	return b.String()
}
