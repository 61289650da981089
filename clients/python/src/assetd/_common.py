"""What the sync and asyncio clients share: the socket, the routes, and
turning answers into values or errors."""

import json
import os
from typing import Any, Dict, Optional
from urllib.parse import quote

from ._errors import AvatarError, DaemonNotRunning, Forbidden, InternalError, error_from_body

DEFAULT_SOCKET = "/run/assetd/assetd.sock"
# A line of a stream is one event; a completed event carries an avatar,
# a few KiB. Anything far bigger is not the daemon talking.
MAX_LINE = 8 << 20
MAX_BODY = 16 << 20
USER_AGENT = "assetd-python/0.1.0"


def socket_path(socket: Optional[str]) -> str:
    return socket or os.environ.get("ASSETD_SOCKET") or DEFAULT_SOCKET


def avatar_path(avatar_id: str, suffix: str = "") -> str:
    return "/v1/avatars/" + quote(avatar_id, safe="") + suffix


def load_path(avatar_id: str, pin: bool, background: bool) -> str:
    q = [k + "=true" for k, on in (("pin", pin), ("background", background)) if on]
    return avatar_path(avatar_id, "/load") + ("?" + "&".join(q) if q else "")


def session_body(token: str, app_id: Optional[str]) -> bytes:
    body: Dict[str, str] = {"sessionToken": token}
    if app_id:
        body["appId"] = app_id
    return json.dumps(body).encode()


def answer_error(status: int, data: bytes) -> AvatarError:
    """The error of a non-2xx answer."""
    try:
        body = json.loads(data)["error"]
        if isinstance(body, dict) and body.get("code"):
            return error_from_body(body)
    except (ValueError, KeyError, TypeError):
        pass
    return InternalError("assetd answered %d without an error body" % status, phase="local")


def decode(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError as e:
        raise InternalError("assetd's answer is not JSON: %s" % e, phase="local") from e


def transport_error(socket: str, err: BaseException) -> AvatarError:
    """Names a failure to reach the daemon, as the Go client does."""
    if isinstance(err, (FileNotFoundError, ConnectionRefusedError)):
        return DaemonNotRunning("assetd is not running at " + socket, phase="local")
    if isinstance(err, PermissionError):
        return Forbidden("no permission to use the socket " + socket, phase="local")
    return DaemonNotRunning("talking to assetd at %s failed: %s" % (socket, err), phase="local")


def stream_ended(avatar_id: str) -> AvatarError:
    return InternalError("the load's stream ended without a result", phase="local", avatar_id=avatar_id)


def parse_line(line: bytes) -> Dict[str, Any]:
    obj = decode(line)
    if not isinstance(obj, dict) or "type" not in obj:
        raise InternalError("assetd sent a stream line that is not an event", phase="local")
    return obj
