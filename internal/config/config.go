package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pelletier/go-toml/v2"
)

// Config is assetd's configuration, one field per key of
// configs/assetd.toml. It holds no secret.
type Config struct {
	Origin  Origin  `toml:"origin"`
	Fetch   Fetch   `toml:"fetch"`
	Store   Store   `toml:"store"`
	API     API     `toml:"api"`
	Preload Preload `toml:"preload"`
	Log     Log     `toml:"log"`
	Metrics Metrics `toml:"metrics"`

	// File is the file the configuration was read from; "" for defaults.
	File string `toml:"-"`
}

// Origin is [origin]: where avatars come from.
type Origin struct {
	URL              string   `toml:"url"`
	AppID            string   `toml:"app_id"`
	SessionTokenFile string   `toml:"session_token_file"`
	AllowInsecure    bool     `toml:"allow_insecure"`
	TrustedKeys      []string `toml:"trusted_keys"`
	Mirrors          []string `toml:"mirrors"`
	// CAFile is a PEM bundle of CA certificates trusted besides the
	// system roots (a site cache's certificate authority); "" = none.
	CAFile string `toml:"ca_file"`
}

// Fetch is [fetch]: how downloads behave.
type Fetch struct {
	RequestsPerSecond      float64  `toml:"requests_per_second"`
	Burst                  int      `toml:"burst"`
	BytesPerSecond         Size     `toml:"bytes_per_second"`
	Concurrency            int      `toml:"concurrency"`
	MaxRetries             int      `toml:"max_retries"`
	RetryWaitMin           Duration `toml:"retry_wait_min"`
	RetryWaitMax           Duration `toml:"retry_wait_max"`
	AttemptTimeout         Duration `toml:"attempt_timeout"`
	StallWindow            Duration `toml:"stall_window"`
	StallMinBytesPerSecond Size     `toml:"stall_min_bytes_per_second"`
	MaxAssetBytes          Size     `toml:"max_asset_bytes"`
	MaxHashRetries         int      `toml:"max_hash_retries"`
	AllowLocalTargets      bool     `toml:"allow_local_targets"`
	BackgroundOnMetered    bool     `toml:"background_on_metered"`
}

// Store is [store]: the cache on disk.
type Store struct {
	Dir           string   `toml:"dir"`
	MaxBytes      Size     `toml:"max_bytes"`
	ReserveBytes  Size     `toml:"reserve_bytes"`
	SelfHeal      bool     `toml:"self_heal"`
	ScrubInterval Duration `toml:"scrub_interval"`
}

// API is [api]: the local socket.
type API struct {
	Socket      string   `toml:"socket"`
	SocketMode  Mode     `toml:"socket_mode"`
	SocketGroup string   `toml:"socket_group"`
	AllowedUIDs []uint32 `toml:"allowed_uids"`
	AllowedGIDs []uint32 `toml:"allowed_gids"`

	MaxLoads             int `toml:"max_loads"`
	MaxLoadsPerUID       int `toml:"max_loads_per_uid"`
	MaxConnections       int `toml:"max_connections"` // 0 = derived from RLIMIT_NOFILE
	MaxConnectionsPerUID int `toml:"max_connections_per_uid"`
	MaxSubscribersPerUID int `toml:"max_subscribers_per_uid"`
}

// Preload is [preload]: avatars kept pinned and fresh.
type Preload struct {
	Avatars         []string `toml:"avatars"`
	RefreshInterval Duration `toml:"refresh_interval"`
	RefreshJitter   Duration `toml:"refresh_jitter"`
	RefreshWindow   []string `toml:"refresh_window"` // "02:00-05:00", local time; none = any time
}

// Log is [log].
type Log struct {
	Level  string `toml:"level"`
	Format string `toml:"format"`
}

// Metrics is [metrics]: the optional TCP listener for Prometheus.
type Metrics struct {
	Listen      string `toml:"listen"` // "" = off; else host:port
	AllowRemote bool   `toml:"allow_remote"`
}

// Environment variables that override the file.
const (
	EnvConfig   = "ASSETD_CONFIG"    // the config file, when none is given
	EnvSocket   = "ASSETD_SOCKET"    // api.socket
	EnvStateDir = "ASSETD_STATE_DIR" // store.dir
)

// DefaultFile is where the systemd unit points --config.
const DefaultFile = "/etc/assetd/assetd.toml"

// maxFileBytes bounds what Load reads: a config is a few KiB.
const maxFileBytes = 1 << 20

// Default returns the built-in configuration: what `assetd serve` runs with
// when there is no file, and the values configs/assetd.toml documents.
func Default() *Config {
	return &Config{
		Fetch: Fetch{
			RequestsPerSecond:      20,
			Burst:                  10,
			BytesPerSecond:         0,
			Concurrency:            4,
			MaxRetries:             5,
			RetryWaitMin:           Duration(250e6),
			RetryWaitMax:           Duration(30e9),
			AttemptTimeout:         Duration(60e9),
			StallWindow:            Duration(15e9),
			StallMinBytesPerSecond: 1024,
			MaxAssetBytes:          4 << 30,
			MaxHashRetries:         2,
			AllowLocalTargets:      false,
			BackgroundOnMetered:    false,
		},
		Store: Store{
			Dir:           "/var/lib/assetd",
			MaxBytes:      4 << 30,
			ReserveBytes:  256 << 20,
			SelfHeal:      true,
			ScrubInterval: Duration(168 * 3600e9),
		},
		API: API{
			Socket:               "/run/assetd/assetd.sock",
			SocketMode:           0o660,
			MaxLoads:             64,
			MaxLoadsPerUID:       32,
			MaxConnections:       0,
			MaxConnectionsPerUID: 256,
			MaxSubscribersPerUID: 64,
		},
		Preload: Preload{
			RefreshInterval: Duration(6 * 3600e9),
			RefreshJitter:   Duration(30 * 60e9),
		},
		Log: Log{Level: "info", Format: "text"},
	}
}

// Load reads the configuration. path "" means getenv("ASSETD_CONFIG"), and
// when that is empty too, Default. ASSETD_SOCKET and ASSETD_STATE_DIR then
// override api.socket and store.dir. getenv is os.Getenv in the daemon; nil
// means an empty environment. Every error is an *Error or a join of them,
// naming the file, the line and the key.
func Load(path string, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if path == "" {
		path = getenv(EnvConfig)
	}
	c, idx := Default(), keyIndex(nil)
	if path != "" {
		data, err := readFile(path)
		if err != nil {
			return nil, err
		}
		if c, idx, err = parse(data, path); err != nil {
			return nil, err
		}
		c.File = path
	}
	src := map[string]string{}
	if v := getenv(EnvSocket); v != "" {
		c.API.Socket, src["api.socket"] = v, EnvSocket
	}
	if v := getenv(EnvStateDir); v != "" {
		c.Store.Dir, src["store.dir"] = v, EnvStateDir
	}
	if err := c.validate(path, idx, src); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes and checks a configuration document over Default. name is
// the file name used in errors. The environment plays no part.
func Parse(data []byte, name string) (*Config, error) {
	c, idx, err := parse(data, name)
	if err != nil {
		return nil, err
	}
	if err := c.validate(name, idx, nil); err != nil {
		return nil, err
	}
	c.File = name
	return c, nil
}

// Validate checks every value, for a Config changed after Load (command
// line flags). Its errors name keys but no file or line.
func (c *Config) Validate() error { return c.validate(c.File, nil, nil) }

func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read the configuration: %v", unwrapPath(err))}
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(io.LimitReader(f, maxFileBytes+1)); err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read the configuration: %v", unwrapPath(err))}
	}
	if b.Len() > maxFileBytes {
		return nil, &Error{File: path, Msg: fmt.Sprintf("larger than %d bytes", maxFileBytes)}
	}
	return b.Bytes(), nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// parse decodes data over Default, strictly, and indexes where each key is.
func parse(data []byte, name string) (*Config, keyIndex, error) {
	c := Default()
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, nil, decodeError(name, data, err)
	}
	c.normalize()
	idx := indexKeys(data)
	if err := idx.checkDurations(name); err != nil {
		return nil, nil, err
	}
	return c, idx, nil
}

// normalize makes empty arrays nil, so that "mirrors = []" and no mirrors
// are the same configuration.
func (c *Config) normalize() {
	for _, p := range []*[]string{&c.Origin.TrustedKeys, &c.Origin.Mirrors, &c.Preload.Avatars, &c.Preload.RefreshWindow} {
		if len(*p) == 0 {
			*p = nil
		}
	}
	for _, p := range []*[]uint32{&c.API.AllowedUIDs, &c.API.AllowedGIDs} {
		if len(*p) == 0 {
			*p = nil
		}
	}
}
