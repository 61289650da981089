package daemon

import (
	"sync"
	"sync/atomic"
)

// session holds the origin credentials that change while the daemon runs:
// the session token (from the token file, re-read on change and on reload,
// or set by PUT /v1/session) and the app ID (from the config, or set by PUT
// /v1/session). fetch reads the token through Token on every request.
//
// The token is a secret: session never logs it, and nothing else may.
type session struct {
	token   atomic.Pointer[string]
	problem atomic.Pointer[string] // why the token file could not be read; nil or "" = it could

	mu    sync.Mutex
	appID string // "" = the configuration's origin.app_id
}

// Token is fetch.Config.Token.
func (s *session) Token() string {
	if t := s.token.Load(); t != nil {
		return *t
	}
	return ""
}

// TokenProblem is fetch.Config.TokenProblem.
func (s *session) TokenProblem() string {
	if p := s.problem.Load(); p != nil {
		return *p
	}
	return ""
}

func (s *session) setProblem(p string) { s.problem.Store(&p) }

// setToken installs a token and reports whether it differs from the last one.
func (s *session) setToken(t string) (changed bool) {
	old := s.token.Swap(&t)
	return old == nil || *old != t
}

// setAppID records an app ID sent by PUT /v1/session and reports whether it
// changed.
func (s *session) setAppID(id string) (changed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	changed = s.appID != id
	s.appID = id
	return changed
}

// appIDOr is the app ID set by the API, or def when none was.
func (s *session) appIDOr(def string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.appID != "" {
		return s.appID
	}
	return def
}
