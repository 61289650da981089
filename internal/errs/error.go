package errs

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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

// Reasons refine a code. They are stable strings that clients may match on.
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
)

// Error is a failure with a client code. The zero value is not useful;
// build one with a composite literal or New.
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
	Hint       string // the next step in command-line terms; "" = Facts.Hint chooses
	Err        error  // the cause, for logs and errors.Is; not sent to clients
}

// New returns an error with a code and a message.
func New(code Code, phase Phase, format string, args ...any) *Error {
	return &Error{Code: code, Phase: phase, Message: fmt.Sprintf(format, args...)}
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

// From returns the *Error in err's chain. A cancelled or expired context
// becomes Cancelled; anything else becomes Internal wrapping err. From(nil)
// is nil.
func From(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Code: Cancelled, Phase: PhaseLocal, Message: "cancelled", Err: err}
	}
	return &Error{Code: Internal, Phase: PhaseLocal, Message: err.Error(), Err: err}
}

// CodeOf returns the code of err, "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	return From(err).Code
}

// IsTransient reports whether a retry may help with err.
func IsTransient(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Transient
}

// HTTPStatus is the status the local API answers err with.
func HTTPStatus(err error) int {
	e := From(err)
	switch e.Code {
	case AvatarIDUnrecognized:
		if e.Reason == ReasonInvalidID {
			return http.StatusBadRequest
		}
		return http.StatusNotFound
	case AvatarAssetMissing:
		if e.Reason == ReasonNotCached || e.Reason == "" {
			return http.StatusNotFound
		}
		return http.StatusConflict
	case AppIDUnrecognized:
		return http.StatusForbidden
	case SessionTokenInvalid, SessionTokenExpired:
		return http.StatusUnauthorized
	case InsufficientBalance:
		return http.StatusPaymentRequired
	case SessionTimeout:
		return http.StatusGatewayTimeout
	case ConcurrentLimitExceeded:
		return http.StatusTooManyRequests
	case FailedToFetchAvatarMetadata, FailedToDownloadAvatarAssets, ServerError:
		if e.Reason == ReasonInsufficientStorage {
			return http.StatusInsufficientStorage
		}
		return http.StatusBadGateway
	case Cancelled:
		return StatusClientClosedRequest
	case BadRequest:
		if e.Reason == ReasonForceRequired {
			return http.StatusConflict
		}
		return http.StatusBadRequest
	case NotFound:
		return http.StatusNotFound
	case MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case Forbidden:
		return http.StatusForbidden
	case PayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case DaemonNotRunning:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// StatusClientClosedRequest answers a request whose load was cancelled
// (nginx's convention; there is no standard status for it).
const StatusClientClosedRequest = 499

// Exit codes of the command line (config.md). ExitCode is the one switch
// that chooses among them; `assetd --help` prints ExitCodesHelp.
const (
	ExitOK          = 0
	ExitAvatar      = 1
	ExitUsage       = 2
	ExitUnreachable = 3
	ExitAccount     = 4
	ExitInterrupted = 130
)

// ExitCodesHelp documents the exit codes for --help.
const ExitCodesHelp = `Exit codes:
  0    success
  1    an avatar error (the code is printed)
  2    usage or configuration error: a bad command line or flag, a
       syntactically invalid avatar ID, no origin.url, an origin URL the
       configuration refuses, an unreadable token file, import over an
       avatar from the origin without --force, anything serve refuses at
       start (a bad config file, a socket or state dir it cannot create)
  3    the daemon is not reachable
  4    an account error (appIDUnrecognized, sessionTokenInvalid,
       sessionTokenExpired, insufficientBalance)
  130  interrupted or cancelled`

// configuration reports whether e's cause is this device's configuration
// or the command line, whatever its code: exit 2, where only the operator
// can help. A new reason of that kind belongs here.
func configuration(e *Error) bool {
	switch e.Reason {
	case ReasonNoOrigin, ReasonInvalidID, ReasonForceRequired, ReasonTokenFile:
		return true
	case ReasonInsecure:
		return e.Phase == PhaseLocal // origin.url itself, not a URL the origin named
	}
	return false
}

// ExitCode is the process exit code for err; 0 for nil.
func ExitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	e := From(err)
	code := e.Code
	switch {
	case configuration(e):
		return ExitUsage
	case code == DaemonNotRunning:
		return ExitUnreachable
	case code == Internal:
		return ExitAvatar
	}
	switch code.Class() {
	case ClassLocal:
		return ExitUsage
	case ClassAccount:
		return ExitAccount
	case ClassCancel:
		return ExitInterrupted
	}
	return ExitAvatar
}
