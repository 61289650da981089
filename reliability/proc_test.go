package reliability

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// waitLimit bounds every wait on the daemon.
const waitLimit = 60 * time.Second

// proc is a running assetd process.
type proc = testkit.Proc

// env is one daemon's world (testkit.Env) with the TOML its config adds.
type env struct {
	*testkit.Env
	t   *testing.T
	url string // origin URL

	preload []string
	origin  string // TOML appended to [origin]
	fetch   string // TOML appended to [fetch]
	api     string // TOML appended to [api]
}

func newEnv(t *testing.T, url string) *env {
	t.Helper()
	return &env{Env: testkit.NewEnv(t, waitLimit), t: t, url: url}
}

func (e *env) writeConfig() {
	e.t.Helper()
	preload, _ := json.Marshal(e.preload)
	if e.preload == nil {
		preload = []byte("[]")
	}
	cfg := fmt.Sprintf(`[origin]
url = %q
app_id = "reliability"
session_token_file = %q
%s

[fetch]
retry_wait_min = "10ms"
retry_wait_max = "200ms"
max_retries = 3
%s

[store]
dir = %q
max_bytes = "1GiB"
reserve_bytes = 0

[api]
socket = %q
%s

[preload]
avatars = %s

[log]
level = "debug"
`, e.url, e.Token, e.origin, e.fetch, e.State, e.Sock, e.api, preload)
	e.Write(e.Config, cfg)
}

// load streams POST /v1/avatars/{id}/load and returns the last event.
func (e *env) load(ctx context.Context, c *http.Client, id string) (apitype.Event, error) {
	evs, err := testkit.Load(ctx, c, id, nil)
	var last apitype.Event
	if len(evs) > 0 {
		last = evs[len(evs)-1]
	}
	if err == nil && len(evs) == 0 {
		err = errors.New("no events")
	}
	return last, err
}
