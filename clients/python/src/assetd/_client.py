"""The synchronous client: http.client over the daemon's Unix socket."""

import http.client
import socket as _socket
import threading
from typing import Any, Callable, Iterator, List, Optional

from . import _common as c
from ._errors import AvatarError, InternalError
from ._types import Avatar, CacheList, Event, Stats, VerifyResult

ProgressCallback = Callable[[Event], Any]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: Optional[float]) -> None:
        super().__init__("assetd", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.connect(self._path)
        except BaseException:
            s.close()
            raise
        self.sock = s


# A kept-alive connection the daemon closed in the meantime fails like this
# on its next request; the request is then sent once more on a new one.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)


class Client:
    """A client of the assetd daemon, safe to share between threads.

    socket defaults to $ASSETD_SOCKET, then /run/assetd/assetd.sock. timeout
    (seconds) bounds each plain call; the streams of load() and events()
    wait as long as they last. Calls keep their connections alive; close()
    (or leaving a ``with`` block) closes them.
    """

    def __init__(self, socket: Optional[str] = None, timeout: Optional[float] = None) -> None:
        self.socket = c.socket_path(socket)
        self.timeout = timeout
        self._lock = threading.Lock()
        self._idle: List[_UnixConnection] = []
        self._streams: "set[EventStream]" = set()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Closes the kept-alive connections and the open streams."""
        with self._lock:
            idle, self._idle = self._idle, []
            streams, self._streams = list(self._streams), set()
        for conn in idle:
            conn.close()
        for st in streams:
            st.close()

    # --- transport

    def _open(self, timeout: Optional[float]) -> _UnixConnection:
        conn = _UnixConnection(self.socket, timeout)
        try:
            conn.connect()
        except OSError as e:
            raise c.transport_error(self.socket, e) from e
        return conn

    def _request(self, method: str, path: str, body: Optional[bytes] = None) -> "tuple[int, bytes]":
        headers = {"User-Agent": c.USER_AGENT}
        if body is not None:
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            conn, reused = None, False
            with self._lock:
                if self._idle and attempt == 0:
                    conn, reused = self._idle.pop(), True
            if conn is None:
                conn = self._open(self.timeout)
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read(c.MAX_BODY + 1)
            except _STALE as e:
                conn.close()
                if reused:
                    continue
                raise c.transport_error(self.socket, e) from e
            except (OSError, http.client.HTTPException) as e:
                conn.close()
                raise c.transport_error(self.socket, e) from e
            if len(data) > c.MAX_BODY or resp.will_close or not resp.isclosed():
                conn.close()
            else:
                with self._lock:
                    self._idle.append(conn)
            return resp.status, data
        raise AssertionError("unreachable")

    def _call(self, method: str, path: str, body: Optional[bytes] = None) -> Any:
        status, data = self._request(method, path, body)
        if status // 100 != 2:
            raise c.answer_error(status, data)
        return c.decode(data) if data else None

    def _stream(self, method: str, path: str) -> "EventStream":
        conn = self._open(None)
        try:
            conn.request(method, path, headers={"User-Agent": c.USER_AGENT})
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise c.transport_error(self.socket, e) from e
        if resp.status != 200:
            data = resp.read(c.MAX_BODY)
            conn.close()
            raise c.answer_error(resp.status, data)
        st = EventStream(self, conn, resp)
        with self._lock:
            self._streams.add(st)
        return st

    def _forget(self, st: "EventStream") -> None:
        with self._lock:
            self._streams.discard(st)

    # --- the API

    def health(self) -> "dict[str, str]":
        """GET /v1/health: {"status": "ok", "version": ...}."""
        return self._call("GET", "/v1/health")

    def load(self, avatar_id: str, on_progress: Optional[ProgressCallback] = None,
             pin: bool = False, background: bool = False) -> Avatar:
        """Loads an avatar, or joins its load in flight, and waits for it.

        on_progress sees every event of the load's stream, the last one
        included. pin keeps the avatar whatever the cache's quota; background
        queues it behind interactive downloads. A failed load raises its
        AvatarError (Cancelled when someone cancelled it). An exception in
        on_progress (or KeyboardInterrupt) stops this caller's wait; the load
        goes on for the other waiters.
        """
        with self._stream("POST", c.load_path(avatar_id, pin, background)) as st:
            for ev in st:
                if on_progress is not None:
                    on_progress(ev)
                if ev.type == "completed":
                    if ev.avatar is None:
                        raise InternalError("a completed event without an avatar", phase="local",
                                            avatar_id=avatar_id)
                    return ev.avatar
                if ev.type == "failed":
                    raise ev.error or InternalError("a failed event without an error", phase="local",
                                                    avatar_id=avatar_id)
        raise c.stream_ended(avatar_id)

    def retrieve(self, avatar_id: str) -> Optional[Avatar]:
        """The cached avatar, or None when it is not cached; never downloads.
        A cached avatar with a file gone or damaged raises AvatarAssetMissing."""
        try:
            return Avatar.from_json(self._call("GET", c.avatar_path(avatar_id)))
        except AvatarError as e:
            if e.code == "avatarAssetMissing" and e.reason == "notCached":
                return None
            raise

    def list(self) -> CacheList:
        """Every cached avatar and every load in flight."""
        return CacheList.from_json(self._call("GET", "/v1/avatars"))

    def clear(self, avatar_id: str) -> List[str]:
        """Removes one avatar from the cache (AvatarAssetMissing if it was not cached)."""
        return self._call("DELETE", c.avatar_path(avatar_id))["removed"]

    def clear_all(self) -> List[str]:
        """Removes every avatar; returns their IDs."""
        return self._call("DELETE", "/v1/avatars")["removed"]

    def clear_lru(self, keep: int) -> List[str]:
        """Keeps the keep most recently used avatars (and the pinned ones);
        returns the IDs removed."""
        return self._call("POST", "/v1/cache/lru?keep=%d" % int(keep))["removed"]

    def size(self, avatar_id: Optional[str] = None) -> int:
        """Bytes one cached avatar takes, or with no ID the whole cache's."""
        if avatar_id is None:
            return self.stats().total_size
        return self._call("GET", c.avatar_path(avatar_id, "/size"))["bytes"]

    def stats(self) -> Stats:
        """The cache's figures."""
        return Stats.from_json(self._call("GET", "/v1/cache/stats"))

    def cancel(self, avatar_id: str) -> List[str]:
        """Cancels the avatar's load for every waiter; returns [avatar_id] if one was in flight."""
        return self._call("DELETE", c.avatar_path(avatar_id, "/load"))["cancelled"]

    def cancel_all(self) -> List[str]:
        """Cancels every load in flight; returns their IDs."""
        return self._call("DELETE", "/v1/loads")["cancelled"]

    def verify(self, avatar_id: str) -> VerifyResult:
        """Re-hashes a cached avatar's files."""
        return VerifyResult.from_json(self._call("POST", c.avatar_path(avatar_id, "/verify")))

    def set_session_token(self, token: str, app_id: Optional[str] = None) -> None:
        """Gives the daemon a new session token (and app ID); loads that
        failed on the old token are retried. The token is never logged."""
        self._call("PUT", "/v1/session", c.session_body(token, app_id))

    def events(self) -> "EventStream":
        """Every event of the daemon, for every avatar, as an iterator:
        ``with client.events() as evs: for ev in evs: ...``. close() ends it,
        from any thread."""
        return self._stream("GET", "/v1/events")


class EventStream:
    """An NDJSON stream of events: an iterator and a context manager."""

    def __init__(self, client: Client, conn: _UnixConnection, resp: http.client.HTTPResponse) -> None:
        self._client = client
        self._conn = conn
        self._resp = resp
        self._lock = threading.Lock()
        self._closed = False
        self._reading = False  # a thread is in next(): close() leaves the connection to it

    def __iter__(self) -> Iterator[Event]:
        return self

    def __next__(self) -> Event:
        while True:
            with self._lock:
                if self._closed:
                    raise StopIteration
                self._reading = True
            err: Optional[BaseException] = None
            line = b""
            try:
                line = self._resp.readline(c.MAX_LINE + 1)
            except (OSError, ValueError, http.client.HTTPException) as e:
                err = e
            with self._lock:
                self._reading = False
                closed = self._closed
            if closed:
                self._conn.close()
                raise StopIteration
            if err is not None:
                self.close()
                raise c.transport_error(self._client.socket, err) from err
            if not line:
                self.close()
                raise StopIteration
            if len(line) > c.MAX_LINE:
                self.close()
                raise InternalError("a stream line over %d bytes" % c.MAX_LINE, phase="local")
            if line.strip():
                return Event.from_json(c.parse_line(line))

    def close(self) -> None:
        """Ends the stream; a thread blocked in next() sees its end."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            reading = self._reading
        sock = self._conn.sock
        if sock is not None:
            try:
                sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass
        if not reading:
            self._conn.close()
        self._client._forget(self)

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
