package errcode

import (
	"fmt"
	"strings"
)

// Phase is the lifecycle phase in which a failure happened.
type Phase string

const (
	PhaseMetadata Phase = "metadata" // the manifest request
	PhaseDownload Phase = "download" // a blob request
	PhaseVerify   Phase = "verify"   // size and sha256 checks
	PhaseStore    Phase = "store"    // the disk and the index
	PhaseLocal    Phase = "local"    // the local API and cache lookups
)

// Reasons refine a code (Error.Reason). They are stable strings that
// clients may match on; besides these, a failure the origin answered with
// an unexpected status has the reason "http" and the status ("http503").
const (
	ReasonInvalidID           = "invalidId"
	ReasonInvalidManifest     = "invalidManifest"
	ReasonBadSignature        = "badSignature"
	ReasonSizeMismatch        = "sizeMismatch"
	ReasonHashMismatch        = "hashMismatch"
	ReasonNotCached           = "notCached"
	ReasonDamaged             = "damaged"
	ReasonInsufficientStorage = "insufficientStorage"
	ReasonStalled             = "stalled"
	ReasonTooManyRedirects    = "tooManyRedirects"
	ReasonInsecure            = "insecureOrigin"
	ReasonNoOrigin            = "noOrigin"
	ReasonNetwork             = "network"
	ReasonTimeout             = "timeout"
	ReasonRetryAfterTooLong   = "retryAfterTooLong"
	ReasonTooManyLoads        = "tooManyLoads"       // a caller's queue of loads is full
	ReasonTooManyConnections  = "tooManyConnections" // a caller's connections to the socket, or all of them
	ReasonTooManySubscribers  = "tooManySubscribers" // a caller's GET /v1/events streams
	// ReasonForceRequired: the operation would replace what another source
	// put there (import over an avatar cached from the origin) and needs
	// --force (force=true).
	ReasonForceRequired = "forceRequired"
	// ReasonUntrusted: a cached avatar whose manifest no key of
	// origin.trusted_keys in force signed (the keys changed since it was
	// fetched). Retrieve answers 409; a load fetches the manifest again.
	ReasonUntrusted = "untrusted"
	// ReasonTokenFile: the origin refused a request sent without a token
	// because origin.session_token_file could not be read.
	ReasonTokenFile = "tokenFileUnreadable"
	// ReasonConfigRefused: POST /v1/reload found the file bad; the old
	// configuration stays in force.
	ReasonConfigRefused = "configRefused"
	// ReasonPlainNotFound: the manifest request got a 404 without the
	// origin's JSON error body (a plain web server, a wrong path prefix).
	// The code stays avatarIDUnrecognized, as the protocol's table says.
	ReasonPlainNotFound = "plainNotFound"
	// ReasonHTMLAnswer: the manifest request got a web page (a captive
	// portal, a login page) instead of a manifest.
	ReasonHTMLAnswer = "htmlAnswer"
)

// Error is a failure with a client code: what the daemon sends as the
// error body and what the Go client returns for it. The zero value is not
// useful; build one with a composite literal.
type Error struct {
	Code       Code
	Message    string // for people; never contains a secret
	Phase      Phase
	AvatarID   string
	Transient  bool   // a retry may help
	Reason     string // one of the Reason constants, or "http503" and the like
	HTTPStatus int    // the origin's status, when one answered
	ServerCode string // the code in the origin's JSON error body
	Asset      string // the asset path, for download and verify failures
	Hint       string // the next step in command-line terms; never parse it
	Err        error  // the cause, for logs and errors.Is; not sent to clients
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Code))
	if e.AvatarID != "" {
		fmt.Fprintf(&b, " [%s", e.AvatarID)
		if e.Asset != "" {
			fmt.Fprintf(&b, " %s", e.Asset)
		}
		b.WriteString("]")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Err != nil && (e.Message == "" || !strings.Contains(e.Message, e.Err.Error())) {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e carries the code target, when target is a Code, or
// the same code and reason, when target is an *Error with those set.
func (e *Error) Is(target error) bool {
	switch t := target.(type) {
	case Code:
		return e.Code == t
	case *Error:
		return t.Code == e.Code && (t.Reason == "" || t.Reason == e.Reason)
	}
	return false
}

// Recovery is the recovery text of e's code.
func (e *Error) Recovery() string { return e.Code.Recovery() }

// WithAvatar returns a copy of e that names the avatar, unless it names one.
func (e *Error) WithAvatar(id string) *Error {
	c := *e
	if c.AvatarID == "" {
		c.AvatarID = id
	}
	return &c
}
