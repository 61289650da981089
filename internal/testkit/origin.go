package testkit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Origin is an httptest server speaking the origin protocol
// (docs/origin-protocol.md): manifests with ETag, max-age and 304 to
// If-None-Match, blobs with "bytes=N-" ranges. It counts what it answers.
// Chunk, Delay, NoCache and Gen are set before the first request.
type Origin struct {
	Srv   *httptest.Server
	Chunk int           // blob bytes per write (32 KiB)
	Delay time.Duration // pause after each chunk: a slow origin

	NoCache bool                    // no Cache-Control: every load revalidates
	Gen     func(id string) *Avatar // makes unknown avatars on demand, when set

	BytesSent atomic.Int64 // blob bytes written
	Ranged    atomic.Int64 // blob requests that resumed with Range
	BlobReqs  atomic.Int64

	mu        sync.Mutex
	avatars   map[string]*Avatar // the current version
	history   map[string]*Avatar // every version served, by "id@version"
	blobs     map[string][]byte
	token     string           // required as a bearer token when not ""
	authSeen  []string         // Authorization headers received
	manifests map[string]int   // avatar ID -> manifest requests
	gets      map[string]int   // digest -> blob requests
	starts    map[string][]int // digest -> the offset each blob request started at
	sentBy    map[string]int64 // digest -> bytes sent
	hold      map[string]*Hold // digest -> a gate that stalls the blob mid-way
}

// Hold stalls a blob's body after At bytes until Free (or the request
// ends); Sent is closed once At bytes were written.
type Hold struct {
	At      int
	Sent    chan struct{}
	once    sync.Once
	release chan struct{}
}

// Free lets the held blob go on; calling it again does nothing.
func (h *Hold) Free() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// NewOrigin serves avatars until the test ends.
func NewOrigin(t testing.TB, avatars ...*Avatar) *Origin {
	t.Helper()
	o := UnstartedOrigin(avatars...)
	o.Start(t, o)
	return o
}

// UnstartedOrigin is an Origin whose server Start runs, for a handler
// that wraps it.
func UnstartedOrigin(avatars ...*Avatar) *Origin {
	o := &Origin{
		Chunk:     32 << 10,
		avatars:   map[string]*Avatar{},
		history:   map[string]*Avatar{},
		blobs:     map[string][]byte{},
		manifests: map[string]int{},
		gets:      map[string]int{},
		starts:    map[string][]int{},
		sentBy:    map[string]int64{},
		hold:      map[string]*Hold{},
	}
	for _, a := range avatars {
		o.Publish(a)
	}
	return o
}

// Start serves h (o, or a handler in front of it) until the test ends;
// held blobs are freed first.
func (o *Origin) Start(t testing.TB, h http.Handler) {
	o.Srv = httptest.NewServer(h)
	t.Cleanup(func() {
		o.mu.Lock()
		for _, h := range o.hold {
			h.Free()
		}
		o.mu.Unlock()
		o.Srv.Close()
	})
}

// URL is the origin's base URL.
func (o *Origin) URL() string { return o.Srv.URL }

// Publish makes a the current version of its avatar.
func (o *Origin) Publish(a *Avatar) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.publishLocked(a)
}

func (o *Origin) publishLocked(a *Avatar) {
	o.avatars[a.ID] = a
	o.history[a.ID+"@"+a.Version] = a
	for _, x := range a.Assets {
		o.blobs[x.SHA256] = x.Data
	}
}

// Current is the version of id served now, nil if none.
func (o *Origin) Current(id string) *Avatar {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.avatars[id]
}

// Version returns what the origin served as id at version, nil if never.
func (o *Origin) Version(id, version string) *Avatar {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.history[id+"@"+version]
}

// SetToken makes every request need "Authorization: Bearer tok"; "" for
// none.
func (o *Origin) SetToken(tok string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.token = tok
}

// Auths is the Authorization header of every request so far.
func (o *Origin) Auths() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.authSeen...)
}

// HoldBlob makes the next requests for digest stall after at bytes.
func (o *Origin) HoldBlob(digest string, at int) *Hold {
	h := &Hold{At: at, Sent: make(chan struct{}), release: make(chan struct{})}
	o.mu.Lock()
	o.hold[digest] = h
	o.mu.Unlock()
	return h
}

// BlobGets is the number of requests for a blob the origin has.
func (o *Origin) BlobGets(digest string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.gets[digest]
}

// BlobStarts is the offset each request for digest started at.
func (o *Origin) BlobStarts(digest string) []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int(nil), o.starts[digest]...)
}

// ManifestGets is the number of manifest requests for id.
func (o *Origin) ManifestGets(id string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.manifests[id]
}

// Requests is the number of manifest and blob requests answered.
func (o *Origin) Requests() int {
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

// Resent is the bytes sent beyond each blob's size: downloaded again.
func (o *Origin) Resent() int64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	var n int64
	for d, sent := range o.sentBy {
		n += max(0, sent-int64(len(o.blobs[d])))
	}
	return n
}

// Fail answers with the origin protocol's error document.
func Fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "message": "test origin says " + code})
}

func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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

func (o *Origin) manifest(w http.ResponseWriter, r *http.Request, id string) {
	o.mu.Lock()
	o.manifests[id]++
	a := o.avatars[id]
	if a == nil && o.Gen != nil {
		if a = o.Gen(id); a != nil {
			o.publishLocked(a)
		}
	}
	o.mu.Unlock()
	if a == nil {
		Fail(w, http.StatusNotFound, "avatarIDUnrecognized")
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
	}{Schema: 1, AvatarID: a.ID, Version: a.Version}
	for _, x := range a.Assets {
		m.Assets = append(m.Assets, jasset{x.Path, len(x.Data), x.SHA256})
	}
	etag := `"` + a.Version + `"`
	w.Header().Set("ETag", etag)
	if !o.NoCache {
		w.Header().Set("Cache-Control", "max-age=3600")
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(m)
}

// RangeStart is N of a "Range: bytes=N-" header, 0 without one.
func RangeStart(r *http.Request) int64 {
	rg := r.Header.Get("Range")
	if !strings.HasPrefix(rg, "bytes=") || !strings.HasSuffix(rg, "-") {
		return 0
	}
	n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"), 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// blob answers GET and Range requests ("bytes=N-") for a blob, Chunk
// bytes at a time.
func (o *Origin) blob(w http.ResponseWriter, r *http.Request, digest string) {
	o.mu.Lock()
	data, ok := o.blobs[digest]
	h := o.hold[digest]
	start := int(RangeStart(r))
	if start > len(data) {
		start = 0
	}
	if ok {
		o.gets[digest]++
		o.starts[digest] = append(o.starts[digest], start)
	}
	o.mu.Unlock()
	if !ok {
		Fail(w, http.StatusNotFound, "notFound")
		return
	}
	o.BlobReqs.Add(1)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)-start))
	if start > 0 {
		o.Ranged.Add(1)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		w.WriteHeader(http.StatusPartialContent)
	}
	rc := http.NewResponseController(w)
	for pos := start; pos < len(data); {
		end := min(pos+o.Chunk, len(data))
		if h != nil && pos < h.At {
			end = min(end, h.At)
		}
		n, err := w.Write(data[pos:end])
		o.sent(digest, n)
		if err != nil {
			return
		}
		pos = end
		if h != nil && pos == h.At {
			rc.Flush()
			h.once.Do(func() { close(h.Sent) })
			select {
			case <-h.release:
			case <-r.Context().Done():
				return
			}
		}
		if o.Delay > 0 {
			rc.Flush()
			select {
			case <-time.After(o.Delay):
			case <-r.Context().Done():
				return
			}
		}
	}
}

func (o *Origin) sent(digest string, n int) {
	o.BytesSent.Add(int64(n))
	o.mu.Lock()
	o.sentBy[digest] += int64(n)
	o.mu.Unlock()
}
