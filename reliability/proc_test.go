package reliability

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

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
	e.WriteConfig(testkit.Config{
		OriginURL:  e.url,
		AppID:      "reliability",
		MaxRetries: 3,
		Preload:    e.preload,
		Origin:     e.origin,
		Fetch:      e.fetch,
		API:        e.api,
	})
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
