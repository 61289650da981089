package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// waitLimit bounds every wait in these tests.
const waitLimit = 20 * time.Second

// env is one daemon's world (testkit.Env) with the origin it fetches from
// and the settings its config carries.
type env struct {
	*testkit.Env
	t      *testing.T
	origin *origin

	level   string   // log.level; "debug" unless set
	preload []string // preload.avatars
}

func newEnv(t *testing.T, o *origin) *env {
	t.Helper()
	e := &env{Env: testkit.NewEnv(t, waitLimit), t: t, origin: o}
	e.writeConfig("")
	return e
}

// writeConfig writes a valid config for the env's origin, with extra TOML
// appended to the [fetch] section.
func (e *env) writeConfig(extraFetch string) {
	e.t.Helper()
	e.writeConfigWith(storeConf{extra: extraFetch})
}

// do sends a request to the daemon and decodes a JSON answer into out
// (an *apitype.ErrorResponse is decoded instead for non-2xx answers when out
// is not one). It returns the status; transport errors are returned too.
func (e *env) do(c *http.Client, method, path string, body io.Reader, out any) (int, error) {
	return testkit.Do(c, method, path, body, out)
}

// must is do that fails the test unless the status is want.
func (e *env) must(c *http.Client, method, path string, body io.Reader, want int, out any) {
	e.t.Helper()
	var raw json.RawMessage
	code, err := e.do(c, method, path, body, &raw)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	if code != want {
		e.t.Fatalf("%s %s: status %d, want %d; body %s", method, path, code, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: decoding %s: %v", method, path, raw, err)
		}
	}
}

// mustErr requires an error answer with status and code.
func (e *env) mustErr(c *http.Client, method, path string, body io.Reader, status int, code string) apitype.Error {
	e.t.Helper()
	var er apitype.ErrorResponse
	e.must(c, method, path, body, status, &er)
	if string(er.Error.Code) != code {
		e.t.Fatalf("%s %s: code %q, want %q", method, path, er.Error.Code, code)
	}
	if er.Error.Message == "" {
		e.t.Errorf("%s %s: error without a message", method, path)
	}
	return er.Error
}

// load streams POST /v1/avatars/{id}/load and returns every event.
func (e *env) load(c *http.Client, id string) ([]apitype.Event, error) {
	return testkit.Load(context.Background(), c, id, nil)
}

// loadWatch is load that also hands each event to onEvent as it arrives.
func (e *env) loadWatch(c *http.Client, id string, onEvent func(apitype.Event)) ([]apitype.Event, error) {
	return testkit.Load(context.Background(), c, id, onEvent)
}

// mustLoad loads id and requires a completed last event.
func (e *env) mustLoad(c *http.Client, id string) *apitype.Avatar {
	e.t.Helper()
	evs, err := e.load(c, id)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(evs) == 0 {
		e.t.Fatalf("load %s: no events", id)
	}
	last := evs[len(evs)-1]
	if last.Type != apitype.EventCompleted || last.Avatar == nil {
		e.t.Fatalf("load %s: last event %+v (error %+v), want completed", id, last, last.Error)
	}
	return last.Avatar
}

// checkFiles requires every asset of got to be the bytes of want.
func checkFiles(t *testing.T, want *avatar, got *apitype.Avatar) {
	t.Helper()
	if err := testkit.CheckFiles(want, got); err != nil {
		t.Fatal(err)
	}
}
