package config

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const examplePath = "../../configs/assetd.toml"

var ignoreFile = cmpopts.IgnoreFields(Config{}, "File")

func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func write(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

// The documented example must be exactly the defaults, and document every
// key, so that the two cannot drift apart.
func TestExampleIsDefault(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(Default(), c, ignoreFile); diff != "" {
		t.Errorf("configs/assetd.toml differs from Default() (-default +file):\n%s", diff)
	}
	idx := indexKeys(data)
	for _, k := range Keys() {
		if _, ok := idx[k]; !ok {
			t.Errorf("configs/assetd.toml does not document key %s", k)
		}
	}
}

func TestSpecKeysExist(t *testing.T) {
	// The keys of the config contract (docs/config.md); more may be added.
	spec := strings.Fields(`origin.url origin.app_id origin.session_token_file origin.allow_insecure
		origin.trusted_keys origin.mirrors fetch.requests_per_second fetch.burst fetch.bytes_per_second
		fetch.concurrency fetch.max_retries fetch.retry_wait_min fetch.retry_wait_max fetch.attempt_timeout
		fetch.stall_window fetch.stall_min_bytes_per_second fetch.max_asset_bytes store.dir store.max_bytes
		store.reserve_bytes store.self_heal store.scrub_interval api.socket api.socket_mode api.socket_group
		api.allowed_uids api.allowed_gids preload.avatars preload.refresh_interval preload.refresh_jitter
		log.level log.format`)
	for _, k := range spec {
		if _, ok := keyTypes()[k]; !ok {
			t.Errorf("key %s of the spec is missing", k)
		}
	}
}

func TestDefaultValues(t *testing.T) {
	c := Default()
	if err := c.validate("", nil, nil); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"retry_wait_min", c.Fetch.RetryWaitMin.Std(), 250 * time.Millisecond},
		{"retry_wait_max", c.Fetch.RetryWaitMax.Std(), 30 * time.Second},
		{"attempt_timeout", c.Fetch.AttemptTimeout.Std(), time.Minute},
		{"stall_window", c.Fetch.StallWindow.Std(), 15 * time.Second},
		{"max_asset_bytes", int64(c.Fetch.MaxAssetBytes), int64(4 << 30)},
		{"reserve_bytes", int64(c.Store.ReserveBytes), int64(256 << 20)},
		{"scrub_interval", c.Store.ScrubInterval.Std(), 168 * time.Hour},
		{"socket_mode", c.API.SocketMode.FileMode(), os.FileMode(0o660)},
		{"refresh_interval", c.Preload.RefreshInterval.Std(), 6 * time.Hour},
		{"refresh_jitter", c.Preload.RefreshJitter.Std(), 30 * time.Minute},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestLoad(t *testing.T) {
	file := write(t, "assetd.toml", "[fetch]\nconcurrency = 8\n[store]\ndir = \"/srv/cache\"\n", 0o644)

	t.Run("no file is the defaults", func(t *testing.T) {
		c, err := Load("", nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(Default(), c); diff != "" {
			t.Error(diff)
		}
	})
	t.Run("path", func(t *testing.T) {
		c, err := Load(file, env(EnvConfig, "/nonexistent"))
		if err != nil {
			t.Fatal(err)
		}
		if c.Fetch.Concurrency != 8 || c.Store.Dir != "/srv/cache" || c.File != file {
			t.Errorf("got concurrency %d dir %q file %q", c.Fetch.Concurrency, c.Store.Dir, c.File)
		}
		if c.Fetch.Burst != Default().Fetch.Burst {
			t.Errorf("unset key lost its default: burst %d", c.Fetch.Burst)
		}
	})
	t.Run("ASSETD_CONFIG when no path", func(t *testing.T) {
		c, err := Load("", env(EnvConfig, file))
		if err != nil {
			t.Fatal(err)
		}
		if c.Fetch.Concurrency != 8 {
			t.Errorf("ASSETD_CONFIG not read: concurrency %d", c.Fetch.Concurrency)
		}
	})
	t.Run("environment overrides the file", func(t *testing.T) {
		c, err := Load(file, env(EnvSocket, "/tmp/a.sock", EnvStateDir, "/tmp/state"))
		if err != nil {
			t.Fatal(err)
		}
		if c.API.Socket != "/tmp/a.sock" || c.Store.Dir != "/tmp/state" {
			t.Errorf("socket %q dir %q", c.API.Socket, c.Store.Dir)
		}
	})
	t.Run("bad environment names the variable", func(t *testing.T) {
		_, err := Load("", env(EnvSocket, "rel.sock"))
		want := `$ASSETD_SOCKET: key api.socket: must be an absolute path, not "rel.sock"`
		if err == nil || err.Error() != want {
			t.Errorf("got %v, want %s", err, want)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		_, err := Load("/nonexistent/assetd.toml", nil)
		var ce *Error
		if !errors.As(err, &ce) || ce.File != "/nonexistent/assetd.toml" || !strings.Contains(err.Error(), "no such file") {
			t.Errorf("got %v", err)
		}
	})
}

func TestErrorsNameFileLineKey(t *testing.T) {
	key := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	tests := []struct {
		name, doc, want string
	}{
		{"bound", "[fetch]\nconcurrency = 0\n", "f.toml:2: key fetch.concurrency: must be between 1 and 64, not 0"},
		{"too many", "[fetch]\n\nconcurrency = 65\n", "f.toml:3: key fetch.concurrency: must be between 1 and 64, not 65"},
		{"unknown key", "[fetch]\nconcurency = 1\n", "f.toml:2: key fetch.concurency: unknown key (did you mean fetch.concurrency?)"},
		{"unknown table", "[nope]\nx = 1\n", "f.toml:1: key nope: unknown table"},
		{"wrong type", "[fetch]\nconcurrency = \"4\"\n", "f.toml:2: key fetch.concurrency: must be an integer"},
		{"bare duration", "[fetch]\nretry_wait_min = 30\n", `f.toml:2: key fetch.retry_wait_min: must be a duration string like "30s" (a bare number has no unit)`},
		{"bad duration", "[fetch]\nretry_wait_min = \"30 s\"\n", `f.toml:2: key fetch.retry_wait_min: "30 s" is not a duration like "250ms", "30s" or "6h"`},
		{"min > max", "[fetch]\nretry_wait_min = \"1m\"\nretry_wait_max = \"1s\"\n", "f.toml:3: key fetch.retry_wait_max: must not be less than fetch.retry_wait_min (1m)"},
		{"min > default max", "[fetch]\nretry_wait_min = \"1m\"\n", "f.toml:2: key fetch.retry_wait_min: must not be more than fetch.retry_wait_max (30s)"},
		{"interval < default jitter", "[preload]\n\nrefresh_interval = \"10m\"\n", "f.toml:3: key preload.refresh_interval: must not be less than preload.refresh_jitter (30m)"},
		{"zero wait", "[fetch]\nretry_wait_min = \"0\"\n", "f.toml:2: key fetch.retry_wait_min: must be more than 0"},
		{"retries", "[fetch]\nmax_retries = 21\n", "f.toml:2: key fetch.max_retries: must be between 0 and 20, not 21"},
		{"rps", "[fetch]\nrequests_per_second = 0\n", "f.toml:2: key fetch.requests_per_second: must be more than 0 and at most 10000"},
		{"asset bytes", "[fetch]\nmax_asset_bytes = \"2TiB\"\n", "f.toml:2: key fetch.max_asset_bytes: must be more than 0 and at most 1TiB"},
		{"ambiguous size", "[fetch]\nmax_asset_bytes = \"4G\"\n", `f.toml:2: key fetch.max_asset_bytes: "4G" is not a size like "4GiB", "256MiB" or 1048576: unknown unit "G" (use B, kB, MB, GB, TB, KiB, MiB, GiB or TiB)`},
		{"negative size", "[store]\nmax_bytes = -1\n", "f.toml:2: key store.max_bytes: must not be negative"},
		{"dotted key", "fetch.burst = 0\n", "f.toml:1: key fetch.burst: must be between 1 and 10000, not 0"},
		{"inline table", "fetch = { burst = 1, concurrency = 99 }\n", "f.toml:1: key fetch.concurrency: must be between 1 and 64, not 99"},
		{"world-writable", "[api]\nsocket_mode = \"0666\"\n", "f.toml:2: key api.socket_mode: 0666 lets every user connect: the socket must not be world-writable"},
		{"0777", "[api]\nsocket_mode = \"0777\"\n", "f.toml:2: key api.socket_mode: 0777 lets every user connect: the socket must not be world-writable"},
		{"not octal", "[api]\nsocket_mode = \"0680\"\n", `f.toml:2: key api.socket_mode: "0680" is not an octal mode like "0660"`},
		{"uid", "[api]\nallowed_uids = [-1]\n", "f.toml:2: key api.allowed_uids: must be an array of non-negative integers (negative integer value -1 cannot be stored in uint32)"},
		{"overflow uid", "[api]\nallowed_uids = [1000, 65534]\n", "f.toml:2: key api.allowed_uids: 65534 is the overflow user ID (nobody), which every user unmapped in a user namespace appears as: admitting it would admit them all; run the client as a user of its own"},
		{"overflow gid", "[api]\nallowed_gids = [65534]\n", "f.toml:2: key api.allowed_gids: 65534 is the overflow group ID (nogroup), which every group unmapped in a user namespace appears as: admitting it would admit them all; use a group of its own"},
		{"max loads", "[api]\nmax_loads = 0\n", "f.toml:2: key api.max_loads: must be between 1 and 4096, not 0"},
		{"per-uid loads over total", "[api]\nmax_loads = 8\nmax_loads_per_uid = 9\n", "f.toml:3: key api.max_loads_per_uid: must be between 1 and 8, not 9"},
		{"few connections", "[api]\nmax_connections = 3\n", "f.toml:2: key api.max_connections: must be between 16 and 1048576, not 3"},
		{"per-uid connections", "[api]\nmax_connections_per_uid = 0\n", "f.toml:2: key api.max_connections_per_uid: must be between 1 and 1048576, not 0"},
		{"subscribers", "[api]\nmax_subscribers_per_uid = 300\n", "f.toml:2: key api.max_subscribers_per_uid: must be between 1 and 256, not 300"},
		{"relative socket", "[api]\nsocket = \"x.sock\"\n", `f.toml:2: key api.socket: must be an absolute path, not "x.sock"`},
		{"long socket", "[api]\nsocket = \"/" + strings.Repeat("s", 120) + "\"\n", "f.toml:2: key api.socket: must be at most 107 bytes (the limit of a Unix socket path)"},
		{"plain http", "[origin]\nurl = \"http://example.com\"\n", `f.toml:2: key origin.url: "http://example.com" is plain http to a host that is not loopback; use https or set origin.allow_insecure`},
		{"ftp", "[origin]\nurl = \"ftp://example.com\"\n", `f.toml:2: key origin.url: "ftp://example.com" must be an http:// or https:// URL`},
		{"userinfo", "[origin]\nurl = \"https://u:p@example.com\"\n", "f.toml:2: key origin.url: the URL must not carry a user or password (use session_token_file)"},
		{"mirror", "[origin]\nurl = \"https://a.example\"\nmirrors = [\"https://b.example\", \"http://c.example\"]\n", `f.toml:3: key origin.mirrors: mirror 2: "http://c.example" is plain http to a host that is not loopback; use https or set origin.allow_insecure`},
		{"key", "[origin]\ntrusted_keys = [\"" + key + "\", \"nope\"]\n", "f.toml:2: key origin.trusted_keys: key 2: not a base64 ed25519 public key (32 bytes wanted)"},
		{"token file", "[origin]\nsession_token_file = \"token\"\n", `f.toml:2: key origin.session_token_file: must be an absolute path, not "token"`},
		{"app id", "[origin]\napp_id = \"a\\nb\"\n", "f.toml:2: key origin.app_id: must be at most 256 printable characters"},
		{"avatar", "[preload]\navatars = [\"ok\", \"../x\"]\n", `f.toml:2: key preload.avatars: invalid avatar ID "../x"`},
		{"jitter", "[preload]\nrefresh_interval = \"1h\"\nrefresh_jitter = \"2h\"\n", "f.toml:3: key preload.refresh_jitter: must not be more than preload.refresh_interval (1h)"},
		{"window", "[preload]\nrefresh_window = [\"02:00-05:00\", \"2-5\"]\n", `f.toml:2: key preload.refresh_window: "2-5": "2" is not a time like 02:00 (a range of local time like "02:00-05:00"; it may cross midnight)`},
		{"window hour", "[preload]\nrefresh_window = [\"22:00-24:00\"]\n", `f.toml:2: key preload.refresh_window: "22:00-24:00": "24:00" is not a time from 00:00 to 23:59 (a range of local time like "02:00-05:00"; it may cross midnight)`},
		{"window empty", "[preload]\nrefresh_window = [\"03:00-03:00\"]\n", `f.toml:2: key preload.refresh_window: "03:00-03:00" starts where it ends (leave the list empty for any time) (a range of local time like "02:00-05:00"; it may cross midnight)`},
		{"window type", "[preload]\nrefresh_window = \"02:00-05:00\"\n", "f.toml:2: key preload.refresh_window: must be an array of strings"},
		{"window long", "[preload]\nrefresh_window = [\"02:00-05:00 and then some more words\"]\n", `f.toml:2: key preload.refresh_window: "02:00-05:00 and "... is not a range like "02:00-05:00" (a range of local time like "02:00-05:00"; it may cross midnight)`},
		{"scrub", "[store]\nscrub_interval = \"1s\"\n", `f.toml:2: key store.scrub_interval: must be "0" (never) or at least 1m`},
		{"level", "[log]\nlevel = \"loud\"\n", `f.toml:2: key log.level: must be debug, info, warn or error, not "loud"`},
		{"format", "[log]\nformat = \"xml\"\n", `f.toml:2: key log.format: must be text or json, not "xml"`},
		{"metrics no port", "[metrics]\nlisten = \"127.0.0.1\"\n", `f.toml:2: key metrics.listen: "127.0.0.1" is not host:port (like "127.0.0.1:9468")`},
		{"metrics port", "[metrics]\nlisten = \"127.0.0.1:0\"\n", `f.toml:2: key metrics.listen: "127.0.0.1:0": the port must be a number from 1 to 65535`},
		{"metrics name", "[metrics]\nlisten = \"metrics.example:9468\"\n", `f.toml:2: key metrics.listen: "metrics.example:9468": the host must be an IP address or localhost, not a name`},
		{"metrics remote", "[metrics]\nlisten = \"192.0.2.7:9468\"\n", `f.toml:2: key metrics.listen: "192.0.2.7:9468" is not a loopback address: the metrics have no authentication; set metrics.allow_remote = true to serve them to the network`},
		{"metrics every interface", "[metrics]\nlisten = \":9468\"\nallow_remote = false\n", `f.toml:2: key metrics.listen: ":9468" is not a loopback address: the metrics have no authentication; set metrics.allow_remote = true to serve them to the network`},
		{"syntax", "[fetch]\nburst = \n", "f.toml:2: unexpected character U+000A at start of value"},
		{"duplicate", "[fetch]\nburst = 1\nburst = 2\n", "f.toml:3: key fetch.burst: is set more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc), "f.toml")
			if err == nil {
				t.Fatalf("no error, want %s", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %s\nwant %s", err, tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Errorf("%T is not a *config.Error", err)
			}
		})
	}
}

func TestSeveralErrorsAtOnce(t *testing.T) {
	_, err := Parse([]byte("[log]\nformat = \"xml\"\n[fetch]\nburst = 0\n"), "f.toml")
	want := "f.toml:2: key log.format: must be text or json, not \"xml\"\nf.toml:4: key fetch.burst: must be between 1 and 10000, not 0"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
}

func TestAccepts(t *testing.T) {
	key := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	doc := `
[origin]
url = "https://origin.example/avatars/"
app_id = "app-1"
allow_insecure = false
trusted_keys = ["` + key + `"]
mirrors = ["https://mirror.example", "http://127.0.0.1:8080"]
[fetch]
requests_per_second = 5
bytes_per_second = "10MiB"
stall_min_bytes_per_second = "1.5kB"
max_asset_bytes = 1073741824
background_on_metered = true
[store]
scrub_interval = "0"
max_bytes = 0
[api]
socket_mode = 0o640
socket_group = "video"
allowed_uids = [1000, 1001]
allowed_gids = [44]
[preload]
avatars = ["a", "b.c_d-e"]
refresh_interval = "0"
refresh_window = ["02:00-05:00", "22:30-00:15"]
[log]
level = "debug"
format = "json"
`
	c, err := Parse([]byte(doc), "f.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.File = "f.toml"
	want.Origin = Origin{URL: "https://origin.example/avatars/", AppID: "app-1", TrustedKeys: []string{key},
		Mirrors: []string{"https://mirror.example", "http://127.0.0.1:8080"}}
	want.Fetch.RequestsPerSecond = 5
	want.Fetch.BytesPerSecond = 10 << 20
	want.Fetch.StallMinBytesPerSecond = 1500
	want.Fetch.MaxAssetBytes = 1 << 30
	want.Store.ScrubInterval = 0
	want.Store.MaxBytes = 0
	want.API.SocketMode, want.API.SocketGroup = 0o640, "video"
	want.API.AllowedUIDs, want.API.AllowedGIDs = []uint32{1000, 1001}, []uint32{44}
	want.Preload.Avatars = []string{"a", "b.c_d-e"}
	want.Preload.RefreshInterval = 0
	want.Preload.RefreshWindow = []string{"02:00-05:00", "22:30-00:15"}
	want.Fetch.BackgroundOnMetered = true
	want.Log = Log{Level: "debug", Format: "json"}
	if diff := cmp.Diff(want, c); diff != "" {
		t.Error(diff)
	}
	keys, err := c.TrustedKeys()
	if err != nil || len(keys) != 1 || len(keys[0]) != 32 {
		t.Errorf("TrustedKeys = %v, %v", keys, err)
	}

	// String is TOML that parses back to the same configuration.
	again, err := Parse([]byte(c.String()), "f.toml")
	if err != nil {
		t.Fatalf("String() does not parse: %v\n%s", err, c)
	}
	if diff := cmp.Diff(c, again); diff != "" {
		t.Errorf("String() round trip:\n%s", diff)
	}
}

func TestMetricsListen(t *testing.T) {
	for _, doc := range []string{
		"[metrics]\nlisten = \"127.0.0.1:9468\"\n",
		"[metrics]\nlisten = \"[::1]:9468\"\n",
		"[metrics]\nlisten = \"localhost:9468\"\n",
		"[metrics]\nlisten = \"0.0.0.0:9468\"\nallow_remote = true\n",
		"[metrics]\nlisten = \":9468\"\nallow_remote = true\n",
		"[metrics]\nlisten = \"\"\nallow_remote = true\n",
	} {
		c, err := Parse([]byte(doc), "f.toml")
		if err != nil {
			t.Errorf("%q: %v", doc, err)
			continue
		}
		if !strings.Contains(doc, c.Metrics.Listen) {
			t.Errorf("%q: listen = %q", doc, c.Metrics.Listen)
		}
	}
	if l := Default().Metrics.Listen; l != "" {
		t.Errorf("metrics.listen is on by default: %q", l)
	}
}

func TestInsecureAllowed(t *testing.T) {
	doc := "[origin]\nurl = \"http://origin.lan\"\nallow_insecure = true\n"
	if _, err := Parse([]byte(doc), "f.toml"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"http://localhost:1", "http://127.0.0.2/x", "http://[::1]:9/"} {
		if err := CheckOriginURL(u, false); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"http://localhost.evil.example", "http://127.0.0.1.nip.io", "https://", "/relative", "https://h/?q=1"} {
		if err := CheckOriginURL(u, false); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
}

// The keys docs/fleet.md's refresh-window section sets are keys.
func TestFleetDocKeys(t *testing.T) {
	b, err := os.ReadFile("../../docs/fleet.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	start := strings.Index(doc, "## Refresh windows and metered links")
	if start < 0 {
		t.Fatal("docs/fleet.md has no refresh-window section")
	}
	section := doc[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	named := 0
	for _, key := range regexp.MustCompile("`((?:preload\\.|fetch\\.)?[a-z]+_[a-z_]+)`").FindAllStringSubmatch(section, -1) {
		named++
		if !slices.Contains(Keys(), key[1]) && !slices.Contains(Keys(), "preload."+key[1]) && !slices.Contains(Keys(), "fetch."+key[1]) {
			t.Errorf("docs/fleet.md names %s, which is not a configuration key", key[1])
		}
	}
	c, err := Parse([]byte(section[strings.Index(section, "```toml")+7:strings.Index(section, "```\n\n-")]), "fleet.md")
	if err != nil || len(c.Preload.RefreshWindow) != 1 || c.Fetch.BackgroundOnMetered {
		t.Errorf("docs/fleet.md's example: %+v, %v", c, err)
	}
	if named < 2 {
		t.Errorf("docs/fleet.md's section names %d keys", named)
	}
}
