"""Errors: AvatarError and one subclass per error code.

The classes are named after the AvatarKit SDKs' error codes (Android's
spelling: AvatarAssetMissing, FailedToDownloadAvatarAssets, ...), plus the
codes of the local API (Cancelled, BadRequest, ..., DaemonNotRunning).
"""

from typing import Any, Dict, Optional, Type

__all__ = [
    "AvatarError", "AccountError",
    "AppIDUnrecognized", "SessionTokenInvalid", "SessionTokenExpired", "InsufficientBalance",
    "SessionTimeout", "ConcurrentLimitExceeded", "AvatarIDUnrecognized", "AvatarAssetMissing",
    "FailedToFetchAvatarMetadata", "FailedToDownloadAvatarAssets", "ServerError",
    "Cancelled", "BadRequest", "NotFound", "MethodNotAllowed", "Forbidden", "PayloadTooLarge",
    "InternalError", "DaemonNotRunning",
]


class AvatarError(Exception):
    """An assetd error. code is the SDK's code string ("avatarAssetMissing");
    phase the lifecycle phase (metadata, download, verify, store, local);
    transient says a retry may help; recovery what to do about it; hint a
    line for the operator; reason a finer cause ("notCached", "hashMismatch");
    http_status and server_code what the origin answered, when it did."""

    code = ""  # set by each subclass; an unknown code keeps the instance's

    def __init__(self, message: str = "", *, code: Optional[str] = None, phase: Optional[str] = None,
                 transient: bool = False, recovery: Optional[str] = None, hint: Optional[str] = None,
                 reason: Optional[str] = None, avatar_id: Optional[str] = None, asset: Optional[str] = None,
                 http_status: Optional[int] = None, server_code: Optional[str] = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.phase = phase
        self.transient = transient
        self.recovery = recovery if recovery is not None else RECOVERY.get(self.code)
        self.hint = hint
        self.reason = reason
        self.avatar_id = avatar_id
        self.asset = asset
        self.http_status = http_status
        self.server_code = server_code

    def __str__(self) -> str:
        s = self.code
        if self.avatar_id:
            s += " [%s%s]" % (self.avatar_id, " " + self.asset if self.asset else "")
        if self.message:
            s += ": " + self.message
        return s

    def __repr__(self) -> str:
        return "%s(%r, code=%r, reason=%r, avatar_id=%r)" % (
            type(self).__name__, self.message, self.code, self.reason, self.avatar_id)

    def __reduce__(self) -> Any:
        return (_rebuild, (self.to_body(),))

    def to_body(self) -> Dict[str, Any]:
        """The error's wire form, as the daemon sends it inside {"error": ...}."""
        body: Dict[str, Any] = {"code": self.code, "message": self.message, "transient": self.transient}
        for key, val in (("phase", self.phase), ("avatarId", self.avatar_id), ("recovery", self.recovery),
                         ("hint", self.hint), ("reason", self.reason), ("httpStatus", self.http_status),
                         ("serverCode", self.server_code), ("asset", self.asset)):
            if val:
                body[key] = val
        return body


def _rebuild(body: Dict[str, Any]) -> AvatarError:
    return error_from_body(body)


class AccountError(AvatarError):
    """The app ID, the session token or the balance: refresh the token
    (set_session_token) or fix the account."""


class AppIDUnrecognized(AccountError):
    code = "appIDUnrecognized"


class SessionTokenInvalid(AccountError):
    code = "sessionTokenInvalid"


class SessionTokenExpired(AccountError):
    code = "sessionTokenExpired"


class InsufficientBalance(AccountError):
    code = "insufficientBalance"


class SessionTimeout(AvatarError):
    code = "sessionTimeout"


class ConcurrentLimitExceeded(AvatarError):
    code = "concurrentLimitExceeded"


class AvatarIDUnrecognized(AvatarError):
    code = "avatarIDUnrecognized"


class AvatarAssetMissing(AvatarError):
    code = "avatarAssetMissing"


class FailedToFetchAvatarMetadata(AvatarError):
    code = "failedToFetchAvatarMetadata"


class FailedToDownloadAvatarAssets(AvatarError):
    code = "failedToDownloadAvatarAssets"


class ServerError(AvatarError):
    code = "serverError"


class Cancelled(AvatarError):
    """The load was cancelled (cancel(), cancel_all(), or the daemon
    stopping); not an avatar error."""

    code = "cancelled"


class BadRequest(AvatarError):
    code = "badRequest"


class NotFound(AvatarError):
    code = "notFound"


class MethodNotAllowed(AvatarError):
    code = "methodNotAllowed"


class Forbidden(AvatarError):
    """The caller may not use the daemon (its uid or gid is not allowed)."""

    code = "forbidden"


class PayloadTooLarge(AvatarError):
    code = "payloadTooLarge"


class InternalError(AvatarError):
    code = "internalError"


class DaemonNotRunning(AvatarError):
    """Nothing listens on the socket."""

    code = "daemonNotRunning"


BY_CODE: Dict[str, Type[AvatarError]] = {
    c.code: c for c in (
        AppIDUnrecognized, SessionTokenInvalid, SessionTokenExpired, InsufficientBalance, SessionTimeout,
        ConcurrentLimitExceeded, AvatarIDUnrecognized, AvatarAssetMissing, FailedToFetchAvatarMetadata,
        FailedToDownloadAvatarAssets, ServerError, Cancelled, BadRequest, NotFound, MethodNotAllowed,
        Forbidden, PayloadTooLarge, InternalError, DaemonNotRunning,
    )
}

# What to do about each code, as the daemon says it (internal/errs): errors
# the client makes itself, such as DaemonNotRunning, carry it too.
RECOVERY: Dict[str, str] = {
    "appIDUnrecognized": "Verify your app ID in the dashboard.",
    "sessionTokenInvalid": "Verify token generation on your server.",
    "sessionTokenExpired": "Request a new token from your server.",
    "insufficientBalance": "Top up your account in the dashboard.",
    "sessionTimeout": "Reconnect by calling start() again.",
    "concurrentLimitExceeded": "Close other active sessions before starting a new one.",
    "avatarIDUnrecognized": "Check the avatar ID exists and is published.",
    "avatarAssetMissing": "Re-download with AvatarManager.load().",
    "failedToFetchAvatarMetadata": "Check network connectivity and retry.",
    "failedToDownloadAvatarAssets": "Check network connectivity and retry.",
    "serverError": "Check the error message for details.",
    "cancelled": "Load the avatar again if it is still needed.",
    "badRequest": "Fix the request; see docs/api.md.",
    "notFound": "See docs/api.md for the routes.",
    "methodNotAllowed": "See docs/api.md for the routes.",
    "forbidden": "Run as root, the daemon's user, a member of its group (usermod -aG assetd USER), "
                 "or a user in api.allowed_uids or api.allowed_gids; browsers may not call the API.",
    "payloadTooLarge": "Send a body of at most 64 KiB.",
    "internalError": "Check the daemon's log; retry.",
    "daemonNotRunning": "Start it with 'assetd serve' or 'systemctl start assetd'.",
}


def error_from_body(body: Dict[str, Any]) -> AvatarError:
    """The AvatarError of a wire body ({"code": ..., "message": ...})."""
    code = str(body.get("code") or "internalError")
    cls = BY_CODE.get(code, AvatarError)
    return cls(
        str(body.get("message", "")), code=code, phase=body.get("phase"), transient=bool(body.get("transient")),
        recovery=body.get("recovery"), hint=body.get("hint"), reason=body.get("reason"),
        avatar_id=body.get("avatarId"), asset=body.get("asset"), http_status=body.get("httpStatus"),
        server_code=body.get("serverCode"),
    )
