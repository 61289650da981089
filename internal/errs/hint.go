package errs

import (
	"fmt"
	"strings"

	"github.com/assetd/assetd/apitype/errcode"
)

// Facts are what the daemon knows that a hint names: the configuration in
// use. The zero value is a command line that knows nothing of the daemon.
type Facts struct {
	ConfigPath string // the configuration file in use; "" = the built-in defaults
	OriginURL  string // origin.url, redacted; "" = none
}

// configIn names where a setting is changed.
func (f Facts) configIn() string {
	if f.ConfigPath == "" {
		return "a configuration file passed to assetd serve --config"
	}
	return f.ConfigPath
}

func (f Facts) origin() string {
	if f.OriginURL == "" {
		return "origin.url"
	}
	return "origin.url (" + f.OriginURL + ")"
}

// Hint is the next step for e in command-line terms: e.Hint when the place
// that built e set one (it knew more), else one chosen by e's reason, then
// by its code, and filled with f. "" when there is nothing better than the
// code's recovery text. Unlike Recovery, which is the SDK table's text for
// the code, a hint follows the cause.
func (f Facts) Hint(e *errcode.Error) string {
	if e == nil {
		return ""
	}
	if e.Hint != "" {
		return e.Hint
	}
	if h := f.byReason(e); h != "" {
		return h
	}
	return f.byCode(e)
}

func (f Facts) byReason(e *errcode.Error) string {
	id := e.AvatarID
	if id == "" {
		id = "ID"
	}
	switch e.Reason {
	case errcode.ReasonNoOrigin:
		return "set origin.url in " + f.configIn()
	case errcode.ReasonInvalidID:
		return "check the ID: it is the name of the avatar's folder given to assetd publish"
	case errcode.ReasonNotCached:
		return "run: assetd preload " + id
	case errcode.ReasonDamaged:
		return "run: assetd preload " + id + " to fetch the damaged files again"
	case errcode.ReasonSizeMismatch, errcode.ReasonHashMismatch:
		return "run: assetd preload " + id + "; if it recurs, the origin serves bytes that differ from its manifest: republish the avatar (assetd publish)"
	case errcode.ReasonInsufficientStorage:
		return "free disk space, or raise store.max_bytes or lower store.reserve_bytes in " + f.configIn()
	case errcode.ReasonBadSignature:
		return "sign the manifest with a key in origin.trusted_keys (assetd publish --sign), or add its key to origin.trusted_keys in " + f.configIn()
	case errcode.ReasonUntrusted:
		return "run: assetd preload " + id + " to fetch it again signed by a key in origin.trusted_keys, or add its key to origin.trusted_keys in " + f.configIn()
	case errcode.ReasonTokenFile:
		return "make origin.session_token_file readable by assetd (it is read again when it changes), or: assetd session set --token-file FILE"
	case errcode.ReasonInsecure:
		return "use https:// in " + f.origin() + ", or http:// to a loopback host; origin.allow_insecure in " + f.configIn() + " is for test rigs"
	case errcode.ReasonNetwork, errcode.ReasonTimeout, errcode.ReasonStalled:
		return "check that " + f.origin() + " is reachable from this machine, then retry"
	case errcode.ReasonTooManyRedirects:
		return "check " + f.origin() + ": it redirects too often"
	case errcode.ReasonTooManyLoads:
		return "wait for your loads to finish (assetd ls), or cancel some (assetd cancel); api.max_loads_per_uid in " + f.configIn() + " sets how many run at once"
	case errcode.ReasonTooManyConnections:
		return "close idle connections to the socket; api.max_connections_per_uid in " + f.configIn() + " sets the cap"
	case errcode.ReasonTooManySubscribers:
		return "close other 'assetd events' streams of this user; api.max_subscribers_per_uid in " + f.configIn() + " sets the cap"
	case errcode.ReasonRetryAfterTooLong:
		return "the origin asked to wait longer than fetch.retry_wait_max: retry later"
	case errcode.ReasonInvalidManifest:
		return "the origin serves a manifest assetd refuses: republish the avatar (assetd publish), and check " + f.origin()
	case errcode.ReasonPlainNotFound:
		return "check " + f.origin() + " in " + f.configIn() + ": it must be the root of the published tree (serving /v1/avatars/{id}/manifest); or publish " + id + " there"
	case errcode.ReasonHTMLAnswer:
		return "log in to the network if a captive portal is in the way, or fix " + f.origin() + " in " + f.configIn()
	case "http404":
		return "the origin lacks a file its manifest names: publish the avatar again (assetd publish)"
	}
	if strings.HasPrefix(e.Reason, "http5") {
		return "the origin failed; retry later, or check " + f.origin()
	}
	return ""
}

func (f Facts) byCode(e *errcode.Error) string {
	switch e.Code {
	case errcode.AvatarIDUnrecognized:
		return fmt.Sprintf("the origin has no avatar %q: check the ID, or publish it", e.AvatarID)
	case errcode.AvatarAssetMissing:
		if e.AvatarID != "" {
			return "run: assetd preload " + e.AvatarID
		}
	case errcode.SessionTokenInvalid, errcode.SessionTokenExpired:
		return "give assetd a new token: assetd session set --token-file FILE, or rewrite origin.session_token_file"
	case errcode.AppIDUnrecognized:
		return "check origin.app_id in " + f.configIn()
	case errcode.SessionTimeout, errcode.ConcurrentLimitExceeded:
		return "retry later"
	case errcode.FailedToFetchAvatarMetadata, errcode.FailedToDownloadAvatarAssets:
		return "check that " + f.origin() + " is reachable from this machine, then retry"
	case errcode.ServerError:
		return "retry later; the origin's message says what failed"
	}
	return ""
}

// HumanBytes prints a byte count as messages and hints do, in binary
// units: "812 B", "8.6 MiB".
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit && n > -unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit || m <= -unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
