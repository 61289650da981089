package errs

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/assetd/assetd/apitype/errcode"
)

// New returns an error with a code and a message.
func New(code errcode.Code, phase errcode.Phase, format string, args ...any) *errcode.Error {
	return &errcode.Error{Code: code, Phase: phase, Message: fmt.Sprintf(format, args...)}
}

// From returns the *Error in err's chain. A cancelled or expired context
// becomes Cancelled; anything else becomes Internal wrapping err. From(nil)
// is nil.
func From(err error) *errcode.Error {
	if err == nil {
		return nil
	}
	var e *errcode.Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.Canceled) {
		return &errcode.Error{Code: errcode.Cancelled, Phase: errcode.PhaseLocal, Message: "cancelled", Err: err}
	}
	return &errcode.Error{Code: errcode.Internal, Phase: errcode.PhaseLocal, Message: err.Error(), Err: err}
}

// CodeOf returns the code of err, "" for nil.
func CodeOf(err error) errcode.Code {
	if err == nil {
		return ""
	}
	return From(err).Code
}

// IsTransient reports whether a retry may help with err.
func IsTransient(err error) bool {
	var e *errcode.Error
	return errors.As(err, &e) && e.Transient
}

// HTTPStatus is the status the local API answers err with.
func HTTPStatus(err error) int {
	e := From(err)
	switch e.Code {
	case errcode.AvatarIDUnrecognized:
		if e.Reason == errcode.ReasonInvalidID {
			return http.StatusBadRequest
		}
		return http.StatusNotFound
	case errcode.AvatarAssetMissing:
		if e.Reason == errcode.ReasonNotCached || e.Reason == "" {
			return http.StatusNotFound
		}
		return http.StatusConflict
	case errcode.AppIDUnrecognized:
		return http.StatusForbidden
	case errcode.SessionTokenInvalid, errcode.SessionTokenExpired:
		return http.StatusUnauthorized
	case errcode.InsufficientBalance:
		return http.StatusPaymentRequired
	case errcode.SessionTimeout:
		return http.StatusGatewayTimeout
	case errcode.ConcurrentLimitExceeded:
		return http.StatusTooManyRequests
	case errcode.FailedToFetchAvatarMetadata, errcode.FailedToDownloadAvatarAssets, errcode.ServerError:
		if e.Reason == errcode.ReasonInsufficientStorage {
			return http.StatusInsufficientStorage
		}
		return http.StatusBadGateway
	case errcode.Cancelled:
		return StatusClientClosedRequest
	case errcode.BadRequest:
		if e.Reason == errcode.ReasonForceRequired {
			return http.StatusConflict
		}
		return http.StatusBadRequest
	case errcode.NotFound:
		return http.StatusNotFound
	case errcode.MethodNotAllowed:
		return http.StatusMethodNotAllowed
	case errcode.Forbidden:
		return http.StatusForbidden
	case errcode.PayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case errcode.DaemonNotRunning:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// StatusClientClosedRequest answers a request whose load was cancelled
// (nginx's convention; there is no standard status for it).
const StatusClientClosedRequest = 499

// Exit codes of the command line (docs/config.md). ExitCode is the one switch
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
func configuration(e *errcode.Error) bool {
	switch e.Reason {
	case errcode.ReasonNoOrigin, errcode.ReasonInvalidID, errcode.ReasonForceRequired, errcode.ReasonTokenFile:
		return true
	case errcode.ReasonInsecure:
		return e.Phase == errcode.PhaseLocal // origin.url itself, not a URL the origin named
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
	case code == errcode.DaemonNotRunning:
		return ExitUnreachable
	case code == errcode.Internal:
		return ExitAvatar
	}
	switch code.Class() {
	case errcode.ClassLocal:
		return ExitUsage
	case errcode.ClassAccount:
		return ExitAccount
	case errcode.ClassCancel:
		return ExitInterrupted
	}
	return ExitAvatar
}
