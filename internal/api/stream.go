package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/assetd/assetd/apitype"
	"github.com/assetd/assetd/apitype/errcode"
	"github.com/assetd/assetd/internal/errs"
	"github.com/assetd/assetd/internal/mailbox"
)

// load answers POST /v1/avatars/{id}/load: an NDJSON stream by default,
// or with ?wait=false the load's state (202) or the fresh cached avatar
// (200) at once.
func (s *Server) load(w http.ResponseWriter, r *http.Request, id string) {
	q, err := query(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var o LoadOptions
	wait, err := boolParam(q, "wait", true)
	if err == nil {
		o.Pin, err = boolParam(q, "pin", false)
	}
	if err == nil {
		o.Background, err = boolParam(q, "background", false)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !wait {
		load, cached, err := s.m.Start(r.Context(), id, o)
		switch {
		case err != nil:
			s.writeError(w, r, err)
		case cached != nil:
			s.writeAvatar(w, http.StatusOK, cached)
		default:
			s.writeJSON(w, http.StatusAccepted, load)
		}
		return
	}
	s.streamLoad(w, r, id, o)
}

type loadResult struct {
	av  *apitype.Avatar
	err error
}

// streamLoad runs Manager.Load in a goroutine it waits for, and writes the
// load's events as they come. Progress never blocks the manager: events
// queue here, and a run of progress events waiting for a slow reader
// collapses to the latest. The stream ends with exactly one completed or
// failed event; if the manager sent none, it is made from Load's result.
func (s *Server) streamLoad(w http.ResponseWriter, r *http.Request, id string, o LoadOptions) {
	q := newEventQueue()
	o.Progress = q.Push
	done := make(chan loadResult, 1)
	go func() {
		av, err := s.m.Load(r.Context(), id, o)
		done <- loadResult{av, err}
	}()

	st := s.startStream(w)
	for {
		select {
		case <-q.Ready():
			st.write(q.Take())
		case res := <-done:
			st.write(q.Close())
			if !st.ended {
				st.write([]apitype.Event{s.final(id, res)})
			}
			return
		}
	}
}

func (s *Server) final(id string, res loadResult) apitype.Event {
	if res.err == nil && res.av == nil {
		res.err = errors.New("the manager returned neither an avatar nor an error")
	}
	if res.err != nil {
		body := s.body(errs.From(res.err).WithAvatar(id))
		return apitype.Event{Type: apitype.EventFailed, AvatarID: id, State: apitype.StateFailed, Error: &body}
	}
	return apitype.Event{Type: apitype.EventCompleted, AvatarID: id, State: apitype.StateCompleted,
		Progress: 1, BytesDone: res.av.SizeBytes, BytesTotal: res.av.SizeBytes, Avatar: res.av}
}

// events answers GET /v1/events: every event until the caller goes away,
// the server stops, or the manager closes the subscription.
func (s *Server) events(w http.ResponseWriter, r *http.Request, _ string) {
	if p, ok := r.Context().Value(peerKey{}).(peer); ok && p.known {
		if why := s.lim.admitSubscriber(p.uid, s.privileged(p.uid)); why != "" {
			s.writeError(w, r, &errcode.Error{Code: errcode.ConcurrentLimitExceeded, Phase: errcode.PhaseLocal, Transient: true,
				Reason: errcode.ReasonTooManySubscribers, Message: "too many event streams: " + why})
			return
		}
		defer s.lim.release(p.uid, &s.lim.subs)
	}
	ch, cancel := s.m.Subscribe()
	defer cancel()
	st := s.startStream(w)
	st.events = true
	// A stream its caller does not read is closed after the read timeout,
	// whether or not events keep coming.
	var check <-chan time.Time
	watch := newSubscriberWatch(r.Context(), s.opts.SubscriberReadTimeout)
	if watch != nil {
		t := time.NewTicker(max(s.opts.SubscriberReadTimeout/6, time.Millisecond))
		defer t.Stop()
		check = t.C
	}
	one := make([]apitype.Event, 1)
	for {
		select {
		case <-r.Context().Done():
			return
		case now := <-check:
			if watch.stuck(now) {
				s.log.Info("api: closing an event stream its caller has not read", "timeout", s.opts.SubscriberReadTimeout)
				// A deadline in the past fails the end of the response,
				// so the server closes the connection too.
				_ = st.rc.SetWriteDeadline(time.Now())
				return
			}
		case ev, ok := <-ch:
			if !ok {
				return
			}
			one[0] = ev
			st.write(one)
			if st.err != nil {
				return
			}
		}
	}
}

// stream writes NDJSON, flushing after every batch.
type stream struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	enc    *json.Encoder
	events bool  // /v1/events: no terminal event ends it
	ended  bool  // a completed or failed event was written
	err    error // the first write error: the caller is gone
	hint   func(*errcode.Body) *errcode.Body
}

func (s *Server) startStream(w http.ResponseWriter) *stream {
	h := w.Header()
	h["Content-Type"] = []string{"application/x-ndjson"}
	h["Cache-Control"] = []string{"no-store"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(http.StatusOK)
	st := &stream{w: w, rc: http.NewResponseController(w), enc: json.NewEncoder(w), hint: s.withHint}
	st.err = st.rc.Flush()
	return st
}

// streamWriteTimeout bounds one batch's write: a client that stops reading
// loses its stream instead of pinning a handler until shutdown.
const streamWriteTimeout = 30 * time.Second

func (st *stream) write(evs []apitype.Event) {
	if len(evs) == 0 {
		return
	}
	// Not every ResponseWriter supports deadlines (tests' recorders); the
	// socket's does.
	_ = st.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	for i := range evs {
		if st.err != nil || st.ended {
			return
		}
		evs[i].Error = st.hint(evs[i].Error)
		st.err = st.enc.Encode(&evs[i])
		if !st.events && (evs[i].Type == apitype.EventCompleted || evs[i].Type == apitype.EventFailed) {
			st.ended = true
		}
	}
	if st.err == nil {
		st.err = st.rc.Flush()
	}
}

// newEventQueue takes a load's events from the manager without blocking
// it: a progress event replaces a progress event queued last.
func newEventQueue() *mailbox.Box[apitype.Event] {
	return mailbox.New(func(_ int, last, next apitype.Event) bool {
		return next.Type == apitype.EventProgress && last.Type == apitype.EventProgress
	})
}
