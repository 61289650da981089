package errcode

// Code is a client-visible error code, spelt as the Web SDK spells it.
// A Code is an error so that it can serve as a sentinel for errors.Is:
// errors.Is(err, errcode.AvatarAssetMissing) asks whether err carries it.
type Code string

func (c Code) Error() string { return string(c) }

// The client SDKs' codes (client-errors.txt).
const (
	AppIDUnrecognized            Code = "appIDUnrecognized"
	SessionTokenInvalid          Code = "sessionTokenInvalid"
	SessionTokenExpired          Code = "sessionTokenExpired"
	InsufficientBalance          Code = "insufficientBalance"
	SessionTimeout               Code = "sessionTimeout"
	ConcurrentLimitExceeded      Code = "concurrentLimitExceeded"
	AvatarIDUnrecognized         Code = "avatarIDUnrecognized"
	AvatarAssetMissing           Code = "avatarAssetMissing"
	FailedToFetchAvatarMetadata  Code = "failedToFetchAvatarMetadata"
	FailedToDownloadAvatarAssets Code = "failedToDownloadAvatarAssets"
	ServerError                  Code = "serverError"
)

// Codes assetd adds. Cancelled ends a load that was cancelled; it is not an
// avatar error. The rest describe the local API itself, not an avatar.
const (
	Cancelled        Code = "cancelled"
	BadRequest       Code = "badRequest"
	NotFound         Code = "notFound"
	MethodNotAllowed Code = "methodNotAllowed"
	Forbidden        Code = "forbidden"
	PayloadTooLarge  Code = "payloadTooLarge"
	Internal         Code = "internalError"
	DaemonNotRunning Code = "daemonNotRunning"
)

// Class groups codes by who can act on them (the four handling rules).
// The command line's exit code follows it.
type Class int

const (
	ClassAvatar  Class = iota // an avatar could not be had; retry or check the ID
	ClassAccount              // app ID, token or balance: refresh the token or fix the account
	ClassLocal                // the local API was misused: a caller or operator error
	ClassCancel               // the load was cancelled
)

// Info describes one code: how each SDK spells it, what it means and what
// to do about it.
type Info struct {
	Code        Code
	Web         string // "" where the Web SDK has no such code
	IOS         string
	Android     string
	Description string
	Recovery    string
	Class       Class
}

var table = []Info{
	{AppIDUnrecognized, "appIDUnrecognized", "appIDUnrecognized", "AppIDUnrecognized",
		"App ID not recognized.", "Verify your app ID in the dashboard.", ClassAccount},
	{SessionTokenInvalid, "sessionTokenInvalid", "sessionTokenInvalid", "SessionTokenInvalid",
		"Session token is invalid or appId mismatch.", "Verify token generation on your server.", ClassAccount},
	{SessionTokenExpired, "sessionTokenExpired", "sessionTokenExpired", "SessionTokenExpired",
		"Session token has expired.", "Request a new token from your server.", ClassAccount},
	{InsufficientBalance, "insufficientBalance", "insufficientBalance", "InsufficientBalance",
		"Account balance is insufficient.", "Top up your account in the dashboard.", ClassAccount},
	{SessionTimeout, "sessionTimeout", "sessionTimeout", "SessionTimeout",
		"Session timed out.", "Reconnect by calling start() again.", ClassAvatar},
	{ConcurrentLimitExceeded, "concurrentLimitExceeded", "concurrentLimitExceeded", "ConcurrentLimitExceeded",
		"Concurrent connection limit exceeded.", "Close other active sessions before starting a new one.", ClassAvatar},
	{AvatarIDUnrecognized, "avatarIDUnrecognized", "avatarIDUnrecognized", "AvatarIDUnrecognized",
		"Avatar ID not found.", "Check the avatar ID exists and is published.", ClassAvatar},
	{AvatarAssetMissing, "", "avatarAssetMissing", "AvatarAssetMissing",
		"Avatar asset is missing locally.", "Re-download with AvatarManager.load().", ClassAvatar},
	{FailedToFetchAvatarMetadata, "failedToFetchAvatarMetadata", "failedToFetchAvatarMetadata", "FailedToFetchAvatarMetadata",
		"Failed to fetch avatar metadata.", "Check network connectivity and retry.", ClassAvatar},
	{FailedToDownloadAvatarAssets, "failedToDownloadAvatarAssets", "failedToDownloadAvatarAssets", "FailedToDownloadAvatarAssets",
		"Failed to download avatar assets.", "Check network connectivity and retry.", ClassAvatar},
	{ServerError, "serverError", "serverError(code, message)", "ServerError(message, code)",
		"Server-side error.", "Check the error message for details.", ClassAvatar},

	{Cancelled, "", "", "",
		"The load was cancelled.", "Load the avatar again if it is still needed.", ClassCancel},
	{BadRequest, "", "", "",
		"The request was malformed.", "Fix the request; see docs/api.md.", ClassLocal},
	{NotFound, "", "", "",
		"No such route.", "See docs/api.md for the routes.", ClassLocal},
	{MethodNotAllowed, "", "", "",
		"The route does not take this method.", "See docs/api.md for the routes.", ClassLocal},
	{Forbidden, "", "", "",
		"The caller is not allowed to use assetd.", "Run as root, the daemon's user, a member of its group (usermod -aG assetd USER), or a user in api.allowed_uids or api.allowed_gids; browsers may not call the API.", ClassLocal},
	{PayloadTooLarge, "", "", "",
		"The request body is too large.", "Send a body of at most 64 KiB.", ClassLocal},
	{Internal, "", "", "",
		"assetd failed internally.", "Check the daemon's log; retry.", ClassLocal},
	{DaemonNotRunning, "", "", "",
		"assetd is not running.", "Start it with 'assetd serve' or 'systemctl start assetd'.", ClassLocal},
}

var byCode = func() map[Code]*Info {
	m := make(map[Code]*Info, len(table))
	for i := range table {
		m[table[i].Code] = &table[i]
	}
	return m
}()

// Table returns a copy of every code assetd knows, client codes first.
func Table() []Info { return append([]Info(nil), table...) }

// Lookup returns what is known of a code, and false for an unknown one.
func Lookup(c Code) (Info, bool) {
	i, ok := byCode[c]
	if !ok {
		return Info{}, false
	}
	return *i, true
}

// Recovery is the code's recovery text, "" for an unknown code.
func (c Code) Recovery() string {
	if i, ok := byCode[c]; ok {
		return i.Recovery
	}
	return ""
}

// Description is the code's table description, "" for an unknown code.
func (c Code) Description() string {
	if i, ok := byCode[c]; ok {
		return i.Description
	}
	return ""
}

// Class reports who can act on the code; unknown codes are ClassAvatar.
func (c Code) Class() Class {
	if i, ok := byCode[c]; ok {
		return i.Class
	}
	return ClassAvatar
}

// Known reports whether c is in the table.
func (c Code) Known() bool { _, ok := byCode[c]; return ok }
