package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/token"
)

func (s *Server) health(w http.ResponseWriter, r *http.Request, _ string) {
	s.writeJSON(w, http.StatusOK, apitype.Health{Status: "ok", Version: s.version})
}

func (s *Server) getAvatar(w http.ResponseWriter, r *http.Request, id string) {
	av, err := s.m.Retrieve(id)
	if err == nil && av == nil {
		err = localErr(errcode.Internal, "the manager returned neither an avatar nor an error")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeAvatar(w, http.StatusOK, av)
}

// list answers GET /v1/avatars as apitype.List, written as it is encoded,
// one avatar at a time: a cache of 100,000 avatars is never one answer in
// memory. Its body is chunked, with no Content-Length.
func (s *Server) list(w http.ResponseWriter, r *http.Request, _ string) {
	w.Header()["Content-Type"] = []string{"application/json"}
	w.WriteHeader(http.StatusOK)
	bp := avatarBufs.Get().(*[]byte)
	b := append((*bp)[:0], `{"avatars":[`...)
	first, failed := true, false
	s.m.EachCached(func(a *apitype.Avatar) bool {
		if !first {
			b = append(b, ',')
		}
		first = false
		if !encodable(a) {
			// JSON has no such time, and the status is sent: list it
			// as never used rather than end the answer.
			s.log.Error("api: an avatar's last use is outside years 0-9999", "avatarId", a.AvatarID)
			a.LastUsed = time.Time{}
		}
		b = appendAvatar(b, a)
		if len(b) >= listChunk {
			_, err := w.Write(b)
			b, failed = b[:0], err != nil
		}
		return !failed && r.Context().Err() == nil
	})
	if failed {
		return
	}
	ls := s.m.Loads()
	if ls == nil {
		ls = []apitype.Load{}
	}
	loads, err := json.Marshal(ls)
	if err != nil {
		s.log.Error("api: encoding the loads of the list", "err", err)
		loads = []byte("[]")
	}
	b = append(b, `],"loads":`...)
	b = append(b, loads...)
	b = append(b, "}\n"...)
	w.Write(b)
	if cap(b) <= 1<<20 {
		*bp = b
		avatarBufs.Put(bp)
	}
}

// listChunk is how much of a listing is written at a time.
const listChunk = 32 << 10

func (s *Server) clear(w http.ResponseWriter, r *http.Request, id string) {
	if err := s.m.Clear(id); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, apitype.Removed{Removed: []string{id}})
}

func (s *Server) clearAll(w http.ResponseWriter, r *http.Request, _ string) {
	removed, err := s.m.ClearAll()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, apitype.Removed{Removed: nonNil(removed)})
}

func (s *Server) clearLRU(w http.ResponseWriter, r *http.Request, _ string) {
	q, err := query(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	v := q.Get("keep")
	if !q.Has("keep") {
		s.writeError(w, r, badRequest("keep=N is required"))
		return
	}
	keep, err := strconv.Atoi(v)
	if err != nil || keep < 0 {
		s.writeError(w, r, badRequest("keep=%q is not a count (0 or more)", truncate(v)))
		return
	}
	removed, err := s.m.ClearLRU(keep)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, apitype.Removed{Removed: nonNil(removed)})
}

func (s *Server) cancelLoad(w http.ResponseWriter, r *http.Request, id string) {
	cancelled := []string{}
	if s.m.CancelLoading(id) {
		cancelled = append(cancelled, id)
	}
	s.writeJSON(w, http.StatusOK, apitype.Cancelled{Cancelled: cancelled})
}

func (s *Server) cancelAll(w http.ResponseWriter, r *http.Request, _ string) {
	s.writeJSON(w, http.StatusOK, apitype.Cancelled{Cancelled: nonNil(s.m.CancelAll())})
}

func (s *Server) size(w http.ResponseWriter, r *http.Request, id string) {
	n, err := s.m.CacheSize(id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, apitype.Size{Bytes: n})
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request, _ string) {
	s.writeJSON(w, http.StatusOK, s.m.Stats())
}

func (s *Server) verify(w http.ResponseWriter, r *http.Request, id string) {
	res, err := s.m.Verify(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, res)
}

func (s *Server) session(w http.ResponseWriter, r *http.Request, _ string) {
	var body apitype.Session
	if err := decodeBody(r, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	if body.SessionToken == "" {
		s.writeError(w, r, badRequest("sessionToken is required"))
		return
	}
	if err := token.Check(body.SessionToken); err != nil {
		s.writeError(w, r, badRequest("sessionToken: %v", err))
		return
	}
	if s.opts.SetSession == nil {
		s.writeError(w, r, localErr(errcode.Internal, "this daemon does not take session tokens over the API"))
		return
	}
	if err := s.opts.SetSession(body.SessionToken, body.AppID); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.m.RetryAuthFailed()
	w.WriteHeader(http.StatusNoContent)
}

// reload is POST /v1/reload: the configuration file re-read and put in
// force before the answer (204), or refused with its errors (400
// badRequest, reason configRefused). Only root and the daemon's own uid may
// ask: the allowed uids and groups use the cache, they do not run it.
func (s *Server) reload(w http.ResponseWriter, r *http.Request, _ string) {
	if p, ok := r.Context().Value(peerKey{}).(peer); ok && p.uid != 0 && p.uid != s.selfUID {
		s.writeError(w, r, localErr(errcode.Forbidden, "uid %d may not reload assetd's configuration: only root and the daemon's user may", p.uid))
		return
	}
	if s.opts.Reload == nil {
		s.writeError(w, r, localErr(errcode.Internal, "this daemon does not reload over the API"))
		return
	}
	if err := s.opts.Reload(r.Context()); err != nil {
		var e *errcode.Error
		switch {
		case r.Context().Err() != nil:
			e = &errcode.Error{Code: errcode.Cancelled, Phase: errcode.PhaseLocal, Message: "cancelled", Err: err}
		case !errors.As(err, &e):
			e = &errcode.Error{Code: errcode.BadRequest, Phase: errcode.PhaseLocal, Reason: errcode.ReasonConfigRefused,
				Message: "the configuration was refused; the old one stays in force: " + err.Error(),
				Hint:    "fix the file, then run: assetd reload", Err: err}
		}
		s.writeError(w, r, e)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// importAvatar reads a tar stream of the caller's files (docs/api.md):
// the one route whose body may exceed MaxBodyBytes. Its length must be
// known, so that the manager checks it against the quota before a byte is
// stored; the manager bounds each entry and their number.
func (s *Server) importAvatar(w http.ResponseWriter, r *http.Request, id string) {
	q, err := query(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	o := ImportOptions{Size: r.ContentLength, Version: q.Get("version")}
	if o.Force, err = boolParam(q, "force", false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != tarType {
		s.writeError(w, r, badRequest("the body must be a tar stream (Content-Type: %s), not %q", tarType, truncate(r.Header.Get("Content-Type"))))
		return
	}
	if o.Size < 0 {
		w.Header().Set("Connection", "close")
		s.writeError(w, r, badRequest("an import needs a Content-Length: the quota is checked before anything is stored (curl: --data-binary @FILE, not -T)"))
		return
	}
	av, err := s.m.Import(r.Context(), id, r.Body, o)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeAvatar(w, http.StatusOK, av)
}

const tarType = "application/x-tar"

func (s *Server) pin(w http.ResponseWriter, r *http.Request, id string) { s.setPinned(w, r, id, true) }
func (s *Server) unpin(w http.ResponseWriter, r *http.Request, id string) {
	s.setPinned(w, r, id, false)
}

func (s *Server) setPinned(w http.ResponseWriter, r *http.Request, id string, pinned bool) {
	if err := s.m.SetPinned(id, pinned); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// query parses the query string strictly: a malformed one is badRequest.
func query(r *http.Request) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, badRequest("malformed query: %v", err)
	}
	return q, nil
}

// boolParam reads a boolean query value; "?pin" alone is true.
func boolParam(q url.Values, name string, def bool) (bool, error) {
	if !q.Has(name) {
		return def, nil
	}
	v := q.Get(name)
	if v == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest("%s=%q is not true or false", name, truncate(v))
	}
	return b, nil
}

// decodeBody reads one JSON object, refusing unknown fields, trailing data
// and bodies over MaxBodyBytes.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		switch _, terr := dec.Token(); {
		case terr == nil:
			err = errors.New("data after the JSON object")
		case terr != io.EOF:
			err = fmt.Errorf("data after the JSON object: %w", terr)
		}
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooBig):
		return localErr(errcode.PayloadTooLarge, "the body is over %d bytes", MaxBodyBytes)
	case errors.Is(err, io.EOF):
		return badRequest("a JSON body is required")
	}
	return badRequest("malformed JSON body: %v", err)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
