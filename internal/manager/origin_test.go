package manager

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/internal/fetch"
	"github.com/assetd/assetd/internal/manifest"
	"github.com/assetd/assetd/internal/store"
)

// origin is an httptest origin that counts what it serves.
type origin struct {
	srv *httptest.Server

	mu        sync.Mutex
	avatars   map[string]*originAvatar
	blobs     map[string][]byte
	manifests map[string]int // requests by avatar ID
	notMod    map[string]int // 304 answers by avatar ID
	gets      map[string]int // blob GETs by digest
	served    atomic.Int64   // blob bytes written
	inflight  atomic.Int32   // blob responses being written
	maxAge    int            // Cache-Control max-age, seconds; 0 = none
	status    int            // answer every request with this status when not 0
	blobFail  int            // answer blob requests with this status when not 0
	corrupt   map[string]bool
	token     string             // when set, requests must carry "Bearer token"
	signer    ed25519.PrivateKey // when set, manifests are signed with it

	// gate, when set, holds every blob response after stallAfter bytes
	// until it is closed or the request ends.
	gate       chan struct{}
	stallAfter int64
	chunkDelay time.Duration // between 8 KiB chunks
}

type originAvatar struct {
	version string
	files   []originFile
}

type originFile struct {
	path   string
	digest string
	size   int64
}

func newOrigin(t testing.TB) *origin {
	o := &origin{avatars: map[string]*originAvatar{}, blobs: map[string][]byte{},
		manifests: map[string]int{}, notMod: map[string]int{}, gets: map[string]int{}, corrupt: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/avatars/{id}/manifest", o.manifest)
	mux.HandleFunc("GET /v1/blobs/sha256/{digest}", o.blob)
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	return o
}

// randomBytes is n bytes named by seed.
func randomBytes(seed string, n int) []byte {
	s := sha256.Sum256([]byte(seed))
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func digestOf(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// set publishes avatar id at version with files path → content.
func (o *origin) set(id, version string, files map[string][]byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	a := &originAvatar{version: version}
	for p, b := range files {
		d := digestOf(b)
		o.blobs[d] = b
		a.files = append(a.files, originFile{path: p, digest: d, size: int64(len(b))})
	}
	o.avatars[id] = a
}

func (o *origin) manifest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o.mu.Lock()
	o.manifests[id]++
	a := o.avatars[id]
	status, maxAge, token, signer := o.status, o.maxAge, o.token, o.signer
	o.mu.Unlock()
	if status != 0 {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		return
	}
	if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if a == nil {
		http.NotFound(w, r)
		return
	}
	etag := `"` + a.version + `"`
	w.Header().Set("ETag", etag)
	if maxAge > 0 {
		w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(maxAge))
	}
	if r.Header.Get("If-None-Match") == etag {
		o.mu.Lock()
		o.notMod[id]++
		o.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	type asset struct {
		Path   string `json:"path"`
		Size   int64  `json:"size"`
		SHA256 string `json:"sha256"`
	}
	doc := struct {
		Schema   int     `json:"schema"`
		AvatarID string  `json:"avatarId"`
		Version  string  `json:"version"`
		Assets   []asset `json:"assets"`
	}{Schema: 1, AvatarID: id, Version: a.version}
	for _, f := range a.files {
		doc.Assets = append(doc.Assets, asset{f.path, f.size, f.digest})
	}
	w.Header().Set("Content-Type", "application/json")
	raw, _ := json.Marshal(doc)
	if signer != nil {
		var err error
		if raw, err = manifest.Sign(raw, manifest.KeyID(signer.Public().(ed25519.PublicKey)), signer); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	_, _ = w.Write(raw)
}

// sign makes the origin sign its manifests with priv (nil: unsigned).
func (o *origin) sign(priv ed25519.PrivateKey) {
	o.mu.Lock()
	o.signer = priv
	o.mu.Unlock()
}

func (o *origin) blob(w http.ResponseWriter, r *http.Request) {
	d := r.PathValue("digest")
	o.mu.Lock()
	o.gets[d]++
	b, ok := o.blobs[d]
	status, gate, stallAfter, delay := o.status, o.gate, o.stallAfter, o.chunkDelay
	if o.blobFail != 0 {
		status = o.blobFail
	}
	if o.corrupt[d] && len(b) > 0 {
		b = append([]byte(nil), b...)
		b[len(b)/2] ^= 1
	}
	o.mu.Unlock()
	if status != 0 {
		w.WriteHeader(status)
		return
	}
	if !ok {
		http.NotFound(w, r)
		return
	}
	start := int64(0)
	if rg := r.Header.Get("Range"); strings.HasPrefix(rg, "bytes=") && strings.HasSuffix(rg, "-") {
		n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
		if err == nil && n >= 0 && n <= int64(len(b)) {
			start = n
		}
	}
	w.Header().Set("Content-Length", strconv.FormatInt(int64(len(b))-start, 10))
	if start > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(b)-1, len(b)))
		w.WriteHeader(http.StatusPartialContent)
	}
	o.inflight.Add(1)
	defer o.inflight.Add(-1)
	rc := http.NewResponseController(w)
	pos := start
	for pos < int64(len(b)) {
		if gate != nil && pos >= stallAfter {
			_ = rc.Flush()
			select {
			case <-gate:
				gate = nil
			case <-r.Context().Done():
				return
			}
		}
		end := min(pos+8<<10, int64(len(b)))
		if gate != nil && pos < stallAfter {
			end = min(end, stallAfter)
		}
		n, err := w.Write(b[pos:end])
		o.served.Add(int64(n))
		if err != nil {
			return
		}
		pos = end
		if delay > 0 {
			_ = rc.Flush()
			time.Sleep(delay)
		}
	}
}

func (o *origin) manifestCount(id string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.manifests[id]
}

func (o *origin) getCount(d string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gets[d]
}

func (o *origin) totalGets() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.gets {
		n += c
	}
	return n
}

func (o *origin) totalRequests() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.gets {
		n += c
	}
	for _, c := range o.manifests {
		n += c
	}
	return n
}

// with changes the origin's settings under its lock.
func (o *origin) with(f func(o *origin)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	f(o)
}

func (o *origin) notModCount(id string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.notMod[id]
}

func (o *origin) setStatus(s int) {
	o.mu.Lock()
	o.status = s
	o.mu.Unlock()
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newFetcher(t testing.TB, url string, token func() string, keys ...ed25519.PublicKey) *fetch.Client {
	t.Helper()
	f, err := fetch.New(fetch.Config{
		BaseURL:      url,
		Token:        token,
		TrustedKeys:  keys,
		Concurrency:  4,
		MaxRetries:   1,
		RetryWaitMin: time.Millisecond,
		RetryWaitMax: 5 * time.Millisecond,
		StallWindow:  time.Minute,
		Logger:       quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func openStore(t testing.TB, dir string, opts store.Options) *store.Store {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	st, err := store.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

type env struct {
	o  *origin
	st *store.Store
	m  *Manager
}

func newEnv(t testing.TB, sopts store.Options, mopts Options) *env {
	t.Helper()
	o := newOrigin(t)
	st := openStore(t, t.TempDir(), sopts)
	if mopts.Logger == nil {
		mopts.Logger = quietLogger()
	}
	m := New(st, newFetcher(t, o.srv.URL, nil), mopts)
	t.Cleanup(func() { m.Close() })
	return &env{o: o, st: st, m: m}
}

// files3 is a small avatar: three files named by seed.
func files3(seed string) map[string][]byte {
	return map[string][]byte{
		"model.splat":   randomBytes(seed+"/model", 96<<10),
		"anim/talk.bin": randomBytes(seed+"/talk", 40<<10),
		"meta.json":     []byte(`{"id":"` + seed + `"}`),
	}
}

func totalSize(files map[string][]byte) int64 {
	var n int64
	for _, b := range files {
		n += int64(len(b))
	}
	return n
}

// recorder collects a caller's events.
type recorder struct {
	mu  sync.Mutex
	evs []apitype.Event
}

func (r *recorder) add(ev apitype.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

func (r *recorder) events() []apitype.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]apitype.Event(nil), r.evs...)
}

// waitState waits for a state event of id on events.
func waitState(t *testing.T, events <-chan apitype.Event, id string, want apitype.State) apitype.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatalf("events closed before %s became %s", id, want)
			}
			if ev.Type == apitype.EventState && ev.AvatarID == id && ev.State == want {
				return ev
			}
		case <-ctx.Done():
			t.Fatalf("%s never became %s", id, want)
		}
	}
}
