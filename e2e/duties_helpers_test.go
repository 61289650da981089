package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/testkit"
)

// storeConf is what the duties tests vary in the configuration.
type storeConf struct {
	maxBytes string // store.max_bytes; "1GiB" when ""
	reserve  string // store.reserve_bytes; "0" when ""
	noHeal   bool   // store.self_heal = false
	extra    string // more TOML in [fetch]
	refresh  string // more TOML in [preload]
	scrub    string // store.scrub_interval; the default when ""
}

// writeConfigWith writes the env's configuration with the settings of sc.
func (e *env) writeConfigWith(sc storeConf) {
	e.t.Helper()
	e.Write(e.Config, e.configText(sc))
}

func (e *env) configText(sc storeConf) string {
	store := ""
	if sc.noHeal {
		store = "self_heal = false\n"
	}
	if sc.scrub != "" {
		store += fmt.Sprintf("scrub_interval = %q\n", sc.scrub)
	}
	return e.ConfigText(testkit.Config{
		OriginURL:    e.origin.Srv.URL,
		AppID:        "e2e-app",
		MaxRetries:   2,
		MaxBytes:     sc.maxBytes,
		Reserve:      sc.reserve,
		Level:        e.level,
		Preload:      e.preload,
		Fetch:        sc.extra,
		Store:        store,
		PreloadExtra: sc.refresh,
	})
}

// events is a subscription to /v1/events.
type events struct {
	ch chan apitype.Event
}

// subscribe opens /v1/events and returns once the daemon answered; the
// stream ends with the test.
func (e *env) subscribe() *events {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", "http://assetd/v1/events", nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c := &http.Client{Transport: e.Client().Transport} // no timeout: ctx ends the stream
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		e.t.Fatalf("GET /v1/events: %v", err)
	}
	if resp.StatusCode != 200 {
		resp.Body.Close()
		cancel()
		e.t.Fatalf("GET /v1/events: status %d", resp.StatusCode)
	}
	s := &events{ch: make(chan apitype.Event, 1024)}
	var wg sync.WaitGroup
	wg.Go(func() {
		defer resp.Body.Close()
		defer close(s.ch)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			var ev apitype.Event
			if json.Unmarshal(sc.Bytes(), &ev) != nil {
				continue
			}
			select {
			case s.ch <- ev:
			default: // the test stopped reading
			}
		}
	})
	e.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return s
}

// wait returns the first event that match accepts, failing the test after
// waitLimit.
func (s *events) wait(t *testing.T, what string, match func(apitype.Event) bool) apitype.Event {
	t.Helper()
	timeout := time.NewTimer(waitLimit)
	defer timeout.Stop()
	for {
		select {
		case ev, ok := <-s.ch:
			if !ok {
				t.Fatalf("/v1/events ended before %s", what)
			}
			if match(ev) {
				return ev
			}
		case <-timeout.C:
			t.Fatalf("no event on /v1/events within %v: %s", waitLimit, what)
		}
	}
}

// condOrigin is an origin that answers If-None-Match with 304 when the
// avatar is unchanged, and sends no max-age (every load revalidates). It
// counts the conditional requests and their answers.
type condOrigin struct {
	*origin
	mu          sync.Mutex
	conditional map[string]int // avatar ID -> manifest requests with If-None-Match
	notModified map[string]int // avatar ID -> 304 answers
	keepMaxAge  bool           // send the origin's max-age after all
	blobOrder   []string       // digests, in the order their requests came
}

// order is the digests of the blob requests so far, in order.
func (c *condOrigin) order() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.blobOrder...)
}

// setKeepMaxAge makes the answers carry the test origin's max-age=3600.
func (c *condOrigin) setKeepMaxAge(keep bool) {
	c.mu.Lock()
	c.keepMaxAge = keep
	c.mu.Unlock()
}

func newCondOrigin(t *testing.T, avatars ...*avatar) *condOrigin {
	t.Helper()
	o := testkit.UnstartedOrigin(avatars...)
	c := &condOrigin{origin: o, conditional: map[string]int{}, notModified: map[string]int{}}
	o.Start(t, http.HandlerFunc(c.serve))
	return c
}

func (c *condOrigin) serve(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if d, ok := strings.CutPrefix(p, "/v1/blobs/sha256/"); ok {
		c.mu.Lock()
		c.blobOrder = append(c.blobOrder, d)
		c.mu.Unlock()
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.HasPrefix(p, "/v1/avatars/") && strings.HasSuffix(p, "/manifest") {
		id := strings.TrimSuffix(strings.TrimPrefix(p, "/v1/avatars/"), "/manifest")
		a := c.origin.Current(id)
		c.mu.Lock()
		c.conditional[id]++
		unchanged := a != nil && inm == `"`+a.Version+`"`
		if unchanged {
			c.notModified[id]++
		}
		c.mu.Unlock()
		if unchanged {
			w.Header().Set("ETag", inm)
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	c.mu.Lock()
	keep := c.keepMaxAge
	c.mu.Unlock()
	if !keep {
		w = noMaxAge{w}
	}
	c.origin.ServeHTTP(w, r)
}

// counts returns the conditional requests for id and the 304 answers.
func (c *condOrigin) counts(id string) (conditional, notModified int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conditional[id], c.notModified[id]
}

func (c *condOrigin) manifestGets(id string) int { return c.origin.ManifestGets(id) }

// noMaxAge drops the Cache-Control header of an answer.
type noMaxAge struct{ http.ResponseWriter }

func (w noMaxAge) WriteHeader(code int) {
	w.Header().Del("Cache-Control")
	w.ResponseWriter.WriteHeader(code)
}

func (w noMaxAge) Write(b []byte) (int, error) {
	w.Header().Del("Cache-Control")
	return w.ResponseWriter.Write(b)
}

func (w noMaxAge) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// ingestFiles lists the regular files under the store's ingest directory
// (partial downloads).
func ingestFiles(t *testing.T, state string) []string {
	t.Helper()
	var files []string
	root := filepath.Join(state, "ingest")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// status is the status of GET path and, for an error answer, its code.
func (e *env) status(c *http.Client, path string) (int, string) {
	var raw json.RawMessage
	code, err := e.do(c, "GET", path, nil, &raw)
	if err != nil {
		return 0, err.Error()
	}
	if code/100 == 2 {
		return code, ""
	}
	var er apitype.ErrorResponse
	_ = json.Unmarshal(raw, &er)
	return code, string(er.Error.Code)
}
