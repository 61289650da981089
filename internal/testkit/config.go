package testkit

import (
	"encoding/json"
	"fmt"
)

// Config is what a test varies in the env's assetd.toml; the rest (store
// dir, socket, token file, 10-200 ms retry waits, 1 GiB quota, no reserve)
// comes from the Env.
type Config struct {
	OriginURL  string
	AppID      string
	MaxRetries int
	MaxBytes   string // store.max_bytes; "1GiB" when ""
	Reserve    string // store.reserve_bytes; "0" when ""
	Level      string // log.level; "debug" when ""
	Preload    []string

	// More TOML, appended to each section.
	Origin, Fetch, Store, API, PreloadExtra string
}

// ConfigText is the env's assetd.toml for c.
func (e *Env) ConfigText(c Config) string {
	if c.MaxBytes == "" {
		c.MaxBytes = "1GiB"
	}
	if c.Reserve == "" {
		c.Reserve = "0"
	}
	if c.Level == "" {
		c.Level = "debug"
	}
	preload, err := json.Marshal(c.Preload)
	if err != nil || c.Preload == nil {
		preload = []byte("[]")
	}
	return fmt.Sprintf(`# assetd test config
[origin]
url = %q
app_id = %q
session_token_file = %q
%s
[fetch]
retry_wait_min = "10ms"
retry_wait_max = "200ms"
max_retries = %d
%s
[store]
dir = %q
max_bytes = %q
reserve_bytes = %q
%s
[api]
socket = %q
%s
[preload]
avatars = %s
%s
[log]
level = %q
`, c.OriginURL, c.AppID, e.Token, c.Origin, c.MaxRetries, c.Fetch, e.State, c.MaxBytes, c.Reserve, c.Store,
		e.Sock, c.API, preload, c.PreloadExtra, c.Level)
}

// WriteConfig writes ConfigText(c) to the env's config path.
func (e *Env) WriteConfig(c Config) {
	e.T.Helper()
	e.Write(e.Config, e.ConfigText(c))
}
