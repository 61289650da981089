package api

import (
	"net/http"
	"strings"

	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/manifest"
)

// handler answers one route and method; id is the {id} segment, already
// validated, or "".
type handler func(s *Server, w http.ResponseWriter, r *http.Request, id string)

type method struct {
	name string
	h    handler
	// stream: the handler reads a body of any length and bounds it
	// itself (an import's tar stream), exempt from MaxBodyBytes.
	stream bool
}

type route struct {
	segs    []string // "{id}" matches an avatar ID
	methods []method
	allow   string // the Allow header of a 405
}

const idSeg = "{id}"

func newRoute(path string, ms ...method) route {
	rt := route{segs: strings.Split(strings.TrimPrefix(path, "/"), "/"), methods: ms}
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.name
	}
	rt.allow = strings.Join(names, ", ")
	return rt
}

func get(h handler) method  { return method{name: http.MethodGet, h: h} }
func post(h handler) method { return method{name: http.MethodPost, h: h} }
func put(h handler) method  { return method{name: http.MethodPut, h: h} }
func del(h handler) method  { return method{name: http.MethodDelete, h: h} }

// postStream is post for a handler that bounds its body itself.
func postStream(h handler) method { return method{name: http.MethodPost, h: h, stream: true} }

// routes is the whole API (docs/api.md). Routing is by hand, segment by
// segment: http.ServeMux would clean paths and redirect, and the spec wants
// such paths answered with badRequest.
var routes = []route{
	newRoute("/v1/avatars/{id}", get((*Server).getAvatar), del((*Server).clear)),
	newRoute("/v1/avatars/{id}/load", post((*Server).load), del((*Server).cancelLoad)),
	newRoute("/v1/avatars", get((*Server).list), del((*Server).clearAll)),
	newRoute("/v1/avatars/{id}/size", get((*Server).size)),
	newRoute("/v1/avatars/{id}/verify", post((*Server).verify)),
	newRoute("/v1/avatars/{id}/import", postStream((*Server).importAvatar)),
	newRoute("/v1/avatars/{id}/pin", put((*Server).pin), del((*Server).unpin)),
	newRoute("/v1/health", get((*Server).health)),
	newRoute("/v1/loads", del((*Server).cancelAll)),
	newRoute("/v1/cache/lru", post((*Server).clearLRU)),
	newRoute("/v1/cache/stats", get((*Server).stats)),
	newRoute("/v1/session", put((*Server).session)),
	newRoute("/v1/reload", post((*Server).reload)),
	newRoute("/v1/events", get((*Server).events)),
	newRoute("/metrics", get((*Server).metrics)),
}

func (s *Server) serveHTTP(w http.ResponseWriter, req *http.Request) {
	if err := s.admit(req); err != nil {
		s.writeError(w, req, err)
		return
	}
	if err := checkTarget(req); err != nil {
		s.writeError(w, req, err)
		return
	}
	rt, id := match(req.URL.Path)
	if req.ContentLength > MaxBodyBytes && !rt.streams(req.Method) {
		w.Header().Set("Connection", "close")
		s.writeError(w, req, localErr(errcode.PayloadTooLarge, "the body is %d bytes; the limit is %d", req.ContentLength, MaxBodyBytes))
		return
	}
	if rt == nil {
		s.writeError(w, req, localErr(errcode.NotFound, "no route %s", req.URL.Path))
		return
	}
	if rt.hasID() {
		if err := manifest.ValidateID(id); err != nil {
			s.writeError(w, req, err)
			return
		}
	}
	for _, m := range rt.methods {
		if m.name == req.Method {
			if !m.stream && req.Body != http.NoBody { // a GET has none: no reader to allocate
				req.Body = http.MaxBytesReader(w, req.Body, MaxBodyBytes)
			}
			m.h(s, w, req, id)
			return
		}
	}
	w.Header().Set("Allow", rt.allow)
	s.writeError(w, req, localErr(errcode.MethodNotAllowed, "%s does not take %s; it takes %s", req.URL.Path, req.Method, rt.allow))
}

// admit refuses callers the peer check refused and requests from browsers.
func (s *Server) admit(req *http.Request) error {
	if p, ok := req.Context().Value(peerKey{}).(peer); ok && !p.allowed {
		return localErr(errcode.Forbidden, "uid %d may not use assetd", p.uid)
	}
	if req.Header.Get("Origin") != "" || req.Header.Get("Referer") != "" {
		return localErr(errcode.Forbidden, "requests carrying Origin or Referer headers are refused")
	}
	return nil
}

// checkTarget refuses request targets that a path cleaner would rewrite,
// looking at the target as sent, not at the decoded path.
func checkTarget(req *http.Request) error {
	raw := req.RequestURI
	if raw == "" { // a request built in-process
		raw = req.URL.RequestURI()
	}
	if !strings.HasPrefix(raw, "/") {
		return badRequest("the request target must be a path, not %q", truncate(raw))
	}
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		raw = raw[:i]
	}
	if strings.Contains(raw, "//") || strings.ContainsRune(raw, '\\') {
		return badRequest("the path %q has an empty segment or a backslash", truncate(raw))
	}
	if strings.IndexByte(raw, '%') >= 0 {
		low := strings.ToLower(raw)
		for _, enc := range []string{"%2e", "%2f", "%5c", "%00"} {
			if strings.Contains(low, enc) {
				return badRequest("the path %q has an encoded dot, slash, backslash or NUL", truncate(raw))
			}
		}
	}
	for seg := range strings.SplitSeq(raw[1:], "/") {
		if seg == "." || seg == ".." {
			return badRequest("the path %q has a %q segment", truncate(raw), seg)
		}
	}
	return nil
}

// match finds the route of a path; id is its {id} segment.
func match(path string) (*route, string) {
	if !strings.HasPrefix(path, "/") {
		return nil, ""
	}
	var buf [6]string
	segs := buf[:0]
	rest := path[1:]
	for {
		if len(segs) == len(buf) {
			return nil, ""
		}
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			segs = append(segs, rest)
			break
		}
		segs = append(segs, rest[:i])
		rest = rest[i+1:]
	}
next:
	for i := range routes {
		rt := &routes[i]
		if len(rt.segs) != len(segs) {
			continue
		}
		id := ""
		for j, want := range rt.segs {
			if want == idSeg {
				id = segs[j]
			} else if want != segs[j] {
				continue next
			}
		}
		return rt, id
	}
	return nil, ""
}

// streams reports whether rt's handler of method bounds its body itself;
// false for a nil route.
func (rt *route) streams(method string) bool {
	if rt == nil {
		return false
	}
	for _, m := range rt.methods {
		if m.name == method {
			return m.stream
		}
	}
	return false
}

func (rt *route) hasID() bool {
	for _, s := range rt.segs {
		if s == idSeg {
			return true
		}
	}
	return false
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
