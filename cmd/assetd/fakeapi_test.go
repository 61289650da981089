package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/errs"
)

// fakeAPI is a small assetd API on a real Unix socket that answers with
// the shapes of socket-api.md, scripted per test, and records the calls.
type fakeAPI struct {
	sock string

	mu       sync.Mutex
	calls    []string                        // "METHOD /path?query"
	avatars  map[string]apitype.Avatar       // GET /v1/avatars/{id}, the list
	loads    []apitype.Load                  // the list's loads in flight
	streams  map[string][]apitype.Event      // POST .../load: the NDJSON events
	answers  map[string]*errs.Error          // POST .../load: an error answer instead
	hang     map[string]bool                 // the stream stays open after its events
	verify   map[string]apitype.VerifyResult // POST .../verify
	events   []apitype.Event                 // GET /v1/events, then the stream ends
	sessions []apitype.Session
	imports  [][]string // per import: the version and the query's force, then "path=content" of each tar entry
	stats    apitype.Stats

	started chan string // a hanging stream has sent its events
}

// noLeaks fails t if goroutines started during the test outlive it and
// its cleanups (the fake's server among them).
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

func startFake(t *testing.T) *fakeAPI {
	t.Helper()
	dir, err := os.MkdirTemp("", "adcli") // t.TempDir is too long for sun_path
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fakeAPI{
		sock:    filepath.Join(dir, "s"),
		avatars: map[string]apitype.Avatar{},
		streams: map[string][]apitype.Event{},
		answers: map[string]*errs.Error{},
		hang:    map[string]bool{},
		verify:  map[string]apitype.VerifyResult{},
		started: make(chan string, 16),
	}
	ln, err := net.Listen("unix", f.sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f.mux()}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-served
	})
	return f
}

func (f *fakeAPI) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeAPI) mux() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("GET /v1/health", func(w http.ResponseWriter, _ *http.Request) {
		fakeJSON(w, 200, apitype.Health{Status: "ok", Version: "test"})
	})
	m.HandleFunc("POST /v1/avatars/{id}/load", f.load)
	m.HandleFunc("GET /v1/avatars/{id}", func(w http.ResponseWriter, r *http.Request) {
		av, ok := f.avatar(r.PathValue("id"))
		if !ok {
			fakeError(w, &errs.Error{Code: errs.AvatarAssetMissing, Reason: errs.ReasonNotCached,
				AvatarID: r.PathValue("id"), Message: "Avatar asset is missing locally."})
			return
		}
		fakeJSON(w, 200, av)
	})
	m.HandleFunc("GET /v1/avatars", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		l := apitype.List{Avatars: []apitype.Avatar{}, Loads: append([]apitype.Load{}, f.loads...)}
		for _, av := range f.avatars {
			l.Avatars = append(l.Avatars, av)
		}
		f.mu.Unlock()
		slices.SortFunc(l.Avatars, func(a, b apitype.Avatar) int { return strings.Compare(a.AvatarID, b.AvatarID) })
		fakeJSON(w, 200, l)
	})
	m.HandleFunc("DELETE /v1/avatars/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if _, ok := f.avatar(id); !ok {
			fakeError(w, &errs.Error{Code: errs.AvatarAssetMissing, Reason: errs.ReasonNotCached, AvatarID: id, Message: "not cached"})
			return
		}
		fakeJSON(w, 200, apitype.Removed{Removed: []string{id}})
	})
	m.HandleFunc("DELETE /v1/avatars", func(w http.ResponseWriter, _ *http.Request) {
		fakeJSON(w, 200, apitype.Removed{Removed: []string{"maya", "rohan"}})
	})
	m.HandleFunc("POST /v1/cache/lru", func(w http.ResponseWriter, r *http.Request) {
		if _, err := strconv.Atoi(r.URL.Query().Get("keep")); err != nil {
			fakeError(w, &errs.Error{Code: errs.BadRequest, Message: "keep=N is required"})
			return
		}
		fakeJSON(w, 200, apitype.Removed{Removed: []string{"old1", "old2"}})
	})
	m.HandleFunc("DELETE /v1/avatars/{id}/load", func(w http.ResponseWriter, r *http.Request) {
		c := apitype.Cancelled{Cancelled: []string{}}
		if id := r.PathValue("id"); f.isHanging(id) {
			c.Cancelled = append(c.Cancelled, id)
		}
		fakeJSON(w, 200, c)
	})
	m.HandleFunc("DELETE /v1/loads", func(w http.ResponseWriter, _ *http.Request) {
		fakeJSON(w, 200, apitype.Cancelled{Cancelled: []string{"slow"}})
	})
	m.HandleFunc("GET /v1/avatars/{id}/size", func(w http.ResponseWriter, r *http.Request) {
		av, ok := f.avatar(r.PathValue("id"))
		if !ok {
			fakeError(w, &errs.Error{Code: errs.AvatarAssetMissing, Reason: errs.ReasonNotCached, AvatarID: r.PathValue("id"), Message: "not cached"})
			return
		}
		fakeJSON(w, 200, apitype.Size{Bytes: av.SizeBytes})
	})
	m.HandleFunc("GET /v1/cache/stats", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		fakeJSON(w, 200, f.stats)
	})
	m.HandleFunc("POST /v1/avatars/{id}/verify", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		res, ok := f.verify[r.PathValue("id")]
		f.mu.Unlock()
		if !ok {
			fakeError(w, &errs.Error{Code: errs.AvatarAssetMissing, Reason: errs.ReasonNotCached, AvatarID: r.PathValue("id"), Message: "not cached"})
			return
		}
		fakeJSON(w, 200, res)
	})
	m.HandleFunc("PUT /v1/session", func(w http.ResponseWriter, r *http.Request) {
		var s apitype.Session
		if err := json.NewDecoder(r.Body).Decode(&s); err != nil || s.SessionToken == "" {
			fakeError(w, &errs.Error{Code: errs.BadRequest, Message: "sessionToken is required"})
			return
		}
		f.mu.Lock()
		f.sessions = append(f.sessions, s)
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("POST /v1/avatars/{id}/import", func(w http.ResponseWriter, r *http.Request) {
		// As the daemon: a tar stream of known length, never a path.
		if r.Header.Get("Content-Type") != "application/x-tar" || r.ContentLength < 0 {
			fakeError(w, &errs.Error{Code: errs.BadRequest, Message: "the body must be a tar stream with a Content-Length"})
			return
		}
		version, force := r.URL.Query().Get("version"), r.URL.Query().Get("force")
		if a, ok := f.avatar(r.PathValue("id")); ok && a.Source == "origin" && force != "true" {
			fakeError(w, &errs.Error{Code: errs.BadRequest, Reason: errs.ReasonForceRequired, AvatarID: a.AvatarID,
				Message: "import: " + a.AvatarID + " is cached from the origin; repeat with --force"})
			return
		}
		got := []string{version + force}
		tr := tar.NewReader(r.Body)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil || h.Typeflag != tar.TypeReg {
				fakeError(w, &errs.Error{Code: errs.BadRequest, Message: fmt.Sprintf("bad tar stream: %v", err)})
				return
			}
			b, _ := io.ReadAll(tr)
			got = append(got, h.Name+"="+string(b))
		}
		f.mu.Lock()
		f.imports = append(f.imports, got)
		f.mu.Unlock()
		fakeJSON(w, 200, apitype.Avatar{AvatarID: r.PathValue("id"), Version: version, State: apitype.StateReady,
			SizeBytes: 2048, Source: "import", Assets: []apitype.Asset{{Path: "a"}, {Path: "b"}}})
	})
	pin := func(w http.ResponseWriter, r *http.Request) {
		if _, ok := f.avatar(r.PathValue("id")); !ok {
			fakeError(w, &errs.Error{Code: errs.AvatarAssetMissing, Reason: errs.ReasonNotCached, AvatarID: r.PathValue("id"), Message: "not cached"})
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
	m.HandleFunc("PUT /v1/avatars/{id}/pin", pin)
	m.HandleFunc("DELETE /v1/avatars/{id}/pin", pin)
	m.HandleFunc("GET /v1/events", func(w http.ResponseWriter, _ *http.Request) {
		f.mu.Lock()
		evs := f.events
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-ndjson")
		enc := json.NewEncoder(w)
		for _, ev := range evs {
			enc.Encode(ev)
		}
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls = append(f.calls, strings.TrimSuffix(r.Method+" "+r.URL.Path+"?"+r.URL.RawQuery, "?"))
		f.mu.Unlock()
		m.ServeHTTP(w, r)
	})
}

func (f *fakeAPI) avatar(id string) (apitype.Avatar, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	av, ok := f.avatars[id]
	return av, ok
}

func (f *fakeAPI) isHanging(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hang[id]
}

func (f *fakeAPI) load(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f.mu.Lock()
	evs, ok := f.streams[id]
	answer := f.answers[id]
	hang := f.hang[id]
	f.mu.Unlock()
	if answer != nil {
		fakeError(w, answer)
		return
	}
	if !ok {
		fakeError(w, &errs.Error{Code: errs.Internal, Message: "unscripted load of " + id})
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, ev := range evs {
		enc.Encode(ev)
		w.(http.Flusher).Flush()
	}
	if hang {
		f.started <- id
		<-r.Context().Done()
	}
}

func fakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func fakeError(w http.ResponseWriter, e *errs.Error) {
	fakeJSON(w, errs.HTTPStatus(e), errs.Envelope{Error: e.Body()})
}

// progressEvents is a load of total bytes reported at each of the given
// percentages, then completed.
func progressEvents(id string, total int64, pcts ...int) []apitype.Event {
	var evs []apitype.Event
	for _, p := range pcts {
		done := total * int64(p) / 100
		evs = append(evs, apitype.Event{Type: apitype.EventProgress, AvatarID: id, State: apitype.StateDownloading,
			Progress: float64(p) / 100, BytesDone: done, BytesTotal: total})
	}
	av := testAvatar(id, total)
	return append(evs, apitype.Event{Type: apitype.EventCompleted, AvatarID: id, State: apitype.StateCompleted, Progress: 1, Avatar: &av})
}

func failedEvent(id string, e *errs.Error) apitype.Event {
	body := e.WithAvatar(id).Body()
	return apitype.Event{Type: apitype.EventFailed, AvatarID: id, State: apitype.StateFailed, Error: &body}
}

func testAvatar(id string, size int64) apitype.Avatar {
	return apitype.Avatar{AvatarID: id, Version: "2026-11-01.3", State: apitype.StateReady, SizeBytes: size,
		Assets: []apitype.Asset{
			{Path: "model.splat", Size: size - 1000, SHA256: strings.Repeat("a", 64), LocalPath: "/var/lib/assetd/blobs/sha256/" + strings.Repeat("a", 64)},
			{Path: "meta.json", Size: 1000, SHA256: strings.Repeat("b", 64), LocalPath: "/var/lib/assetd/blobs/sha256/" + strings.Repeat("b", 64)},
		}}
}

// cli runs assetd in-process as main's run does, with captured output,
// and returns what it printed and its exit code.
func cli(t *testing.T, ctx context.Context, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	code = finish(root, args, err, &out, &errOut)
	return out.String(), errOut.String(), code
}

// lines returns the lines of s that start with prefix.
func lines(s, prefix string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}
