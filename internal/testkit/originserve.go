package testkit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fail answers with the origin protocol's error document.
func Fail(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"code": code, "message": "test origin says " + code})
}

func (o *Origin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.reqs = append(o.reqs, r.Header.Clone())
	o.hits[r.URL.Path]++
	o.active++
	token := o.token
	o.mu.Unlock()
	defer o.set(func() { o.active-- })
	if h, pattern := o.mux.Handler(r); pattern != "" {
		h.ServeHTTP(w, r)
		return
	}
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

// proxyError is the answer of a proxy in front of a down origin: a status
// and an empty HTML page.
func proxyError(w http.ResponseWriter, status int) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
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
	status, maxAge, sign := o.status, o.maxAge, o.sign
	o.mu.Unlock()
	if status != 0 {
		proxyError(w, status)
		return
	}
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
	if maxAge > 0 {
		w.Header().Set("Cache-Control", "max-age="+strconv.Itoa(maxAge))
	}
	if r.Header.Get("If-None-Match") == etag {
		o.set(func() { o.notMod[id]++ })
		w.WriteHeader(http.StatusNotModified)
		return
	}
	doc, err := json.Marshal(m)
	if err == nil && sign != nil {
		doc, err = sign(doc)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(append(doc, '\n'))
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

// rangeStart is where the answer to r for a blob of size bytes starts: 0
// for a range beyond its end.
func rangeStart(r *http.Request, size int) int {
	if n := RangeStart(r); n <= int64(size) {
		return int(n)
	}
	return 0
}

// blob answers a blob request from what was published, with the faults
// set.
func (o *Origin) blob(w http.ResponseWriter, r *http.Request, digest string) {
	o.mu.Lock()
	data, ok := o.blobs[digest]
	if ok {
		o.gets[digest]++
		o.starts[digest] = append(o.starts[digest], rangeStart(r, len(data)))
		o.BlobReqs.Add(1)
	}
	status := o.status
	if o.blobFail != 0 {
		status = o.blobFail
	}
	if o.corrupt[digest] && len(data) > 0 {
		data = append([]byte(nil), data...)
		data[len(data)/2] ^= 1
	}
	o.mu.Unlock()
	switch {
	case status != 0:
		proxyError(w, status)
	case !ok:
		Fail(w, http.StatusNotFound, "notFound")
	default:
		o.serve(w, r, digest, data)
	}
}

// ServeBlob answers r with data as the origin answers a blob request (a
// "bytes=N-" range, Chunk bytes at a time, the delay and holds set for
// data's digest), for a Handle handler.
func (o *Origin) ServeBlob(w http.ResponseWriter, r *http.Request, data []byte) {
	o.serve(w, r, Sum(data), data)
}

func (o *Origin) serve(w http.ResponseWriter, r *http.Request, digest string, data []byte) {
	start := rangeStart(r, len(data))
	o.mu.Lock()
	h, chunk, delay := o.hold[digest], o.Chunk, o.delay
	if h == nil {
		h = o.holdAll
	}
	o.mu.Unlock()
	held := h != nil && start <= h.At && h.At < len(data)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Accept-Ranges", "bytes")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)-start))
	if start > 0 {
		o.Ranged.Add(1)
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", start, len(data)-1, len(data)))
		w.WriteHeader(http.StatusPartialContent)
	}
	o.inflight.Add(1)
	defer o.inflight.Add(-1)
	rc := http.NewResponseController(w)
	for pos := start; pos < len(data); {
		if held && pos == h.At {
			rc.Flush()
			h.once.Do(func() { close(h.Sent) })
			select {
			case <-h.release:
			case <-r.Context().Done():
				return
			}
			held = false
		}
		end := min(pos+chunk, len(data))
		if held {
			end = min(end, h.At)
		}
		n, err := w.Write(data[pos:end])
		o.sent(digest, n)
		if err != nil {
			return
		}
		pos = end
		if delay > 0 {
			rc.Flush()
			select {
			case <-time.After(delay):
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
