package errs

import "github.com/assetd/assetd/apitype/errcode"

// The client-facing vocabulary is defined once, in apitype/errcode; errs
// names it again so that the daemon's packages import one package for
// their errors. Nothing here has a value of its own: a new code, phase or
// reason is added to errcode, then named here (TestErrcodeNamedHere).
type (
	Code     = errcode.Code
	Class    = errcode.Class
	Info     = errcode.Info
	Phase    = errcode.Phase
	Error    = errcode.Error
	Body     = errcode.Body
	Envelope = errcode.Envelope
)

const (
	AppIDUnrecognized            = errcode.AppIDUnrecognized
	SessionTokenInvalid          = errcode.SessionTokenInvalid
	SessionTokenExpired          = errcode.SessionTokenExpired
	InsufficientBalance          = errcode.InsufficientBalance
	SessionTimeout               = errcode.SessionTimeout
	ConcurrentLimitExceeded      = errcode.ConcurrentLimitExceeded
	AvatarIDUnrecognized         = errcode.AvatarIDUnrecognized
	AvatarAssetMissing           = errcode.AvatarAssetMissing
	FailedToFetchAvatarMetadata  = errcode.FailedToFetchAvatarMetadata
	FailedToDownloadAvatarAssets = errcode.FailedToDownloadAvatarAssets
	ServerError                  = errcode.ServerError

	Cancelled        = errcode.Cancelled
	BadRequest       = errcode.BadRequest
	NotFound         = errcode.NotFound
	MethodNotAllowed = errcode.MethodNotAllowed
	Forbidden        = errcode.Forbidden
	PayloadTooLarge  = errcode.PayloadTooLarge
	Internal         = errcode.Internal
	DaemonNotRunning = errcode.DaemonNotRunning
)

const (
	ClassAvatar  = errcode.ClassAvatar
	ClassAccount = errcode.ClassAccount
	ClassLocal   = errcode.ClassLocal
	ClassCancel  = errcode.ClassCancel
)

const (
	PhaseMetadata = errcode.PhaseMetadata
	PhaseDownload = errcode.PhaseDownload
	PhaseVerify   = errcode.PhaseVerify
	PhaseStore    = errcode.PhaseStore
	PhaseLocal    = errcode.PhaseLocal
)

const (
	ReasonInvalidID           = errcode.ReasonInvalidID
	ReasonInvalidManifest     = errcode.ReasonInvalidManifest
	ReasonBadSignature        = errcode.ReasonBadSignature
	ReasonSizeMismatch        = errcode.ReasonSizeMismatch
	ReasonHashMismatch        = errcode.ReasonHashMismatch
	ReasonNotCached           = errcode.ReasonNotCached
	ReasonDamaged             = errcode.ReasonDamaged
	ReasonInsufficientStorage = errcode.ReasonInsufficientStorage
	ReasonStalled             = errcode.ReasonStalled
	ReasonTooManyRedirects    = errcode.ReasonTooManyRedirects
	ReasonInsecure            = errcode.ReasonInsecure
	ReasonNoOrigin            = errcode.ReasonNoOrigin
	ReasonNetwork             = errcode.ReasonNetwork
	ReasonTimeout             = errcode.ReasonTimeout
	ReasonRetryAfterTooLong   = errcode.ReasonRetryAfterTooLong
	ReasonTooManyLoads        = errcode.ReasonTooManyLoads
	ReasonTooManyConnections  = errcode.ReasonTooManyConnections
	ReasonTooManySubscribers  = errcode.ReasonTooManySubscribers
	ReasonForceRequired       = errcode.ReasonForceRequired
	ReasonUntrusted           = errcode.ReasonUntrusted
	ReasonTokenFile           = errcode.ReasonTokenFile
	ReasonConfigRefused       = errcode.ReasonConfigRefused
	ReasonPlainNotFound       = errcode.ReasonPlainNotFound
	ReasonHTMLAnswer          = errcode.ReasonHTMLAnswer
)

// Table returns a copy of every code assetd knows, client codes first.
func Table() []Info { return errcode.Table() }

// Lookup returns what is known of a code, and false for an unknown one.
func Lookup(c Code) (Info, bool) { return errcode.Lookup(c) }
