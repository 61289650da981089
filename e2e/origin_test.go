package e2e

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// asset is one file of a test avatar.
type asset struct {
	path string
	data []byte
	sum  string // hex sha256
}

// avatar is a test avatar the origin serves.
type avatar struct {
	id      string
	version string
	assets  []asset
}

// newAvatar makes an avatar of random files of the given sizes.
func newAvatar(t *testing.T, id string, sizes ...int) *avatar {
	t.Helper()
	a := &avatar{id: id, version: "2026-11-01.1"}
	for i, n := range sizes {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		s := sha256.Sum256(b)
		a.assets = append(a.assets, asset{path: fmt.Sprintf("part%d.bin", i), data: b, sum: hex.EncodeToString(s[:])})
	}
	return a
}

func (a *avatar) size() int64 {
	var n int64
	for _, x := range a.assets {
		n += int64(len(x.data))
	}
	return n
}

// origin is an httptest server speaking the origin protocol
// (spec/origin-protocol.md). It counts the requests it answers.
type origin struct {
	srv   *httptest.Server
	token string // required as a bearer token when not ""

	mu        sync.Mutex
	avatars   map[string]*avatar
	blobs     map[string][]byte
	manifests map[string]int   // avatar ID -> manifest requests
	gets      map[string]int   // digest -> blob requests
	starts    map[string][]int // digest -> the offset each blob request started at
	authSeen  []string         // Authorization headers received
	hold      map[string]*hold // digest -> a gate that stalls the blob mid-way
}

// hold stalls a blob's body after at bytes until release is closed (or the
// request ends); sent is closed once at bytes were written.
type hold struct {
	at      int
	sent    chan struct{}
	once    sync.Once
	release chan struct{}
}

func newOrigin(t *testing.T, avatars ...*avatar) *origin {
	t.Helper()
	o := &origin{
		avatars:   map[string]*avatar{},
		blobs:     map[string][]byte{},
		manifests: map[string]int{},
		gets:      map[string]int{},
		starts:    map[string][]int{},
		hold:      map[string]*hold{},
	}
	for _, a := range avatars {
		o.add(a)
	}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(func() {
		o.mu.Lock()
		for _, h := range o.hold {
			h.free()
		}
		o.mu.Unlock()
		o.srv.Close()
	})
	return o
}

func (h *hold) free() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

func (o *origin) setToken(t string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.token = t
}

func (o *origin) add(a *avatar) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.avatars[a.id] = a
	for _, x := range a.assets {
		o.blobs[x.sum] = x.data
	}
}

// holdBlob makes the next requests for digest stall after at bytes.
func (o *origin) holdBlob(digest string, at int) *hold {
	h := &hold{at: at, sent: make(chan struct{}), release: make(chan struct{})}
	o.mu.Lock()
	o.hold[digest] = h
	o.mu.Unlock()
	return h
}

func (o *origin) blobGets(digest string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gets[digest]
}

func (o *origin) blobStarts(digest string) []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int(nil), o.starts[digest]...)
}

func (o *origin) requests() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := 0
	for _, c := range o.manifests {
		n += c
	}
	for _, c := range o.gets {
		n += c
	}
	return n
}

func (o *origin) auths() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.authSeen...)
}

func fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"code":%q,"message":"test origin says %s"}`, code, code)
}

func (o *origin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.authSeen = append(o.authSeen, r.Header.Get("Authorization"))
	token := o.token
	o.mu.Unlock()
	if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
		fail(w, http.StatusUnauthorized, "sessionTokenExpired")
		return
	}
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/v1/avatars/") && strings.HasSuffix(p, "/manifest"):
		o.manifest(w, strings.TrimSuffix(strings.TrimPrefix(p, "/v1/avatars/"), "/manifest"))
	case strings.HasPrefix(p, "/v1/blobs/sha256/"):
		o.blob(w, r, strings.TrimPrefix(p, "/v1/blobs/sha256/"))
	default:
		http.NotFound(w, r)
	}
}

func (o *origin) manifest(w http.ResponseWriter, id string) {
	o.mu.Lock()
	o.manifests[id]++
	a := o.avatars[id]
	o.mu.Unlock()
	if a == nil {
		fail(w, http.StatusNotFound, "avatarIDUnrecognized")
		return
	}
	type jasset struct {
		Path   string `json:"path"`
		Size   int    `json:"size"`
		SHA256 string `json:"sha256"`
	}
	m := struct {
		Schema   int      `json:"schema"`
		AvatarID string   `json:"avatarId"`
		Version  string   `json:"version"`
		Assets   []jasset `json:"assets"`
	}{Schema: 1, AvatarID: a.id, Version: a.version}
	for _, x := range a.assets {
		m.Assets = append(m.Assets, jasset{x.path, len(x.data), x.sum})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", `"`+a.version+`"`)
	w.Header().Set("Cache-Control", "max-age=3600")
	json.NewEncoder(w).Encode(m)
}

// blob answers GET and Range requests ("bytes=N-") for a blob.
func (o *origin) blob(w http.ResponseWriter, r *http.Request, digest string) {
	o.mu.Lock()
	data, ok := o.blobs[digest]
	h := o.hold[digest]
	start := 0
	if rg := r.Header.Get("Range"); strings.HasPrefix(rg, "bytes=") && strings.HasSuffix(rg, "-") {
		if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-")); err == nil && n >= 0 && n <= len(data) {
			start = n
		}
	}
	if ok {
		o.gets[digest]++
		o.starts[digest] = append(o.starts[digest], start)
	}
	o.mu.Unlock()
	if !ok {
		fail(w, http.StatusNotFound, "notFound")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)-start))
	if start > 0 {
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		w.WriteHeader(http.StatusPartialContent)
	}
	body := data[start:]
	if h != nil && start < h.at {
		n := h.at - start
		if _, err := w.Write(body[:n]); err != nil {
			return
		}
		w.(http.Flusher).Flush()
		h.once.Do(func() { close(h.sent) })
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
		body = body[n:]
	}
	w.Write(body)
}
