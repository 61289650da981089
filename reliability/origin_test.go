package reliability

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// file is one asset of a test avatar.
type file struct {
	path string
	data []byte
	sum  string
}

type avatar struct {
	id      string
	version string
	files   []file
}

func (a *avatar) size() int64 {
	var n int64
	for _, f := range a.files {
		n += int64(len(f.data))
	}
	return n
}

// newAvatar makes an avatar of pseudo-random files of the given sizes.
func newAvatar(id string, seed uint64, sizes ...int) *avatar {
	r := rand.New(rand.NewPCG(seed, 7))
	a := &avatar{id: id, version: "1"}
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		a.files = append(a.files, file{path: fmt.Sprintf("part%d.bin", i), data: b, sum: sum(b)})
	}
	return a
}

// binOrigin serves avatars to the real binary, counting blob bytes sent
// and requests, optionally slowed down: chunk bytes every delay.
type binOrigin struct {
	srv   *httptest.Server
	chunk int
	delay time.Duration

	mu       sync.Mutex
	avatars  map[string]*avatar // the current version
	history  map[string]*avatar // every version served, by "id@version"
	noCache  bool               // send no Cache-Control: every load revalidates
	blobs    map[string][]byte
	token    string
	authSeen []string

	gen func(id string) *avatar // makes avatars not in the map, when set

	bytesSent atomic.Int64
	sentBy    sync.Map     // digest -> *atomic.Int64 of bytes sent
	ranged    atomic.Int64 // blob requests that resumed with Range
	blobReqs  atomic.Int64
}

func newBinOrigin(t *testing.T, avatars ...*avatar) *binOrigin {
	t.Helper()
	o := &binOrigin{avatars: map[string]*avatar{}, history: map[string]*avatar{}, blobs: map[string][]byte{}, chunk: 32 << 10}
	for _, a := range avatars {
		o.publish(a)
	}
	o.srv = httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(o.srv.Close)
	return o
}

// resent is the bytes sent beyond each blob's size: downloaded again.
func (o *binOrigin) resent() int64 {
	var n int64
	o.sentBy.Range(func(k, v any) bool {
		o.mu.Lock()
		size := int64(len(o.blobs[k.(string)]))
		o.mu.Unlock()
		n += max(0, v.(*atomic.Int64).Load()-size)
		return true
	})
	return n
}

// publish makes a the current version of its avatar.
func (o *binOrigin) publish(a *avatar) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.publishLocked(a)
}

func (o *binOrigin) publishLocked(a *avatar) {
	o.avatars[a.id] = a
	o.history[a.id+"@"+a.version] = a
	for _, f := range a.files {
		o.blobs[f.sum] = f.data
	}
}

// version returns what the origin served as id at version, nil if never.
func (o *binOrigin) version(id, version string) *avatar {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.history[id+"@"+version]
}

func (o *binOrigin) setToken(tok string) {
	o.mu.Lock()
	o.token = tok
	o.mu.Unlock()
}

func (o *binOrigin) auths() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.authSeen...)
}

func (o *binOrigin) serve(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.authSeen = append(o.authSeen, r.Header.Get("Authorization"))
	token := o.token
	o.mu.Unlock()
	if token != "" && r.Header.Get("Authorization") != "Bearer "+token {
		// A careless origin echoes what it was sent: the daemon must not
		// pass it on.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"code": "sessionTokenExpired",
			"message": "token " + r.Header.Get("Authorization") + " has expired"})
		return
	}
	switch p := r.URL.Path; {
	case strings.HasPrefix(p, "/v1/avatars/") && strings.HasSuffix(p, "/manifest"):
		o.manifest(w, r, strings.TrimSuffix(strings.TrimPrefix(p, "/v1/avatars/"), "/manifest"))
	case strings.HasPrefix(p, "/v1/blobs/sha256/"):
		o.blob(w, r, strings.TrimPrefix(p, "/v1/blobs/sha256/"))
	default:
		http.NotFound(w, r)
	}
}

func (o *binOrigin) manifest(w http.ResponseWriter, r *http.Request, id string) {
	o.mu.Lock()
	a := o.avatars[id]
	if a == nil && o.gen != nil {
		if a = o.gen(id); a != nil {
			o.publishLocked(a)
		}
	}
	noCache := o.noCache
	o.mu.Unlock()
	if a == nil {
		jsonError(w, http.StatusNotFound, "avatarIDUnrecognized")
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
	for _, f := range a.files {
		m.Assets = append(m.Assets, jasset{f.path, len(f.data), f.sum})
	}
	etag := `"` + a.version + `"`
	w.Header().Set("ETag", etag)
	if !noCache {
		w.Header().Set("Cache-Control", "max-age=3600")
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(m)
}

func (o *binOrigin) blob(w http.ResponseWriter, r *http.Request, digest string) {
	o.mu.Lock()
	data, ok := o.blobs[digest]
	o.mu.Unlock()
	if !ok {
		jsonError(w, http.StatusNotFound, "notFound")
		return
	}
	o.blobReqs.Add(1)
	start := rangeStart(r)
	if start > int64(len(data)) {
		start = 0
	}
	if start > 0 {
		o.ranged.Add(1)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
	}
	w.Header().Set("Content-Length", fmt.Sprint(int64(len(data))-start))
	if start > 0 {
		w.WriteHeader(http.StatusPartialContent)
	}
	rc := http.NewResponseController(w)
	for pos := start; pos < int64(len(data)); {
		end := min(pos+int64(o.chunk), int64(len(data)))
		n, err := w.Write(data[pos:end])
		o.bytesSent.Add(int64(n))
		counter, _ := o.sentBy.LoadOrStore(digest, new(atomic.Int64))
		counter.(*atomic.Int64).Add(int64(n))
		if err != nil {
			return
		}
		pos = end
		if o.delay > 0 {
			rc.Flush()
			select {
			case <-time.After(o.delay):
			case <-r.Context().Done():
				return
			}
		}
	}
}
