package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeJSON answers v with a Content-Length, so that keep-alive answers
// need no chunking.
func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= 1<<20 {
			buf.Reset()
			bufPool.Put(buf)
		}
	}()
	buf.Reset()
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		s.log.Error("api: encoding an answer", "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":{"code":"internalError","message":"encoding the answer failed","transient":false}}` + "\n")
	}
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(buf.Len())}
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// writeAvatar answers a cached avatar (the hot path: no reflection).
func (s *Server) writeAvatar(w http.ResponseWriter, status int, av *apitype.Avatar) {
	if !encodable(av) {
		s.writeJSON(w, status, av)
		return
	}
	bp := avatarBufs.Get().(*[]byte)
	b := appendAvatar((*bp)[:0], av)
	b = append(b, '\n')
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(status)
	w.Write(b)
	if cap(b) <= 1<<20 {
		*bp = b
		avatarBufs.Put(bp)
	}
}

var avatarBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// writeError answers err as {"error":{...}} with its status.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := errs.From(err)
	status := errs.HTTPStatus(e)
	if status >= 500 && status != errs.StatusClientClosedRequest {
		s.log.Warn("api: request failed", "method", r.Method, "path", r.URL.Path, "err", e)
	} else {
		s.log.Debug("api: request refused", "method", r.Method, "path", r.URL.Path, "code", e.Code, "msg", e.Message)
	}
	s.writeJSON(w, status, errcode.Envelope{Error: s.body(e)})
}

// body is the wire form of e with its hint filled in from the daemon's
// facts.
func (s *Server) body(e *errcode.Error) errcode.Body {
	b := e.Body()
	b.Hint = s.facts().Hint(e)
	return b
}

// withHint returns b with its hint filled in; b itself is not changed,
// since an event's body is shared by every subscriber.
func (s *Server) withHint(b *errcode.Body) *errcode.Body {
	if b == nil || b.Hint != "" {
		return b
	}
	c := *b
	c.Hint = s.facts().Hint(b.Err())
	return &c
}

func (s *Server) facts() errs.Facts {
	if s.opts.Facts == nil {
		return errs.Facts{}
	}
	return s.opts.Facts()
}

func localErr(code errcode.Code, format string, args ...any) *errcode.Error {
	return &errcode.Error{Code: code, Phase: errcode.PhaseLocal, Message: fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) *errcode.Error {
	return localErr(errcode.BadRequest, format, args...)
}
