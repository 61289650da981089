"""The asyncio client: HTTP/1.1 over asyncio's Unix streams, one
connection a call.

Cancelling a task that waits in load() hangs up its connection: the daemon
stops waiting for that caller only, and the load goes on for the others.
"""

import asyncio
import inspect
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Tuple, Union

from . import _common as c
from ._errors import AvatarError, InternalError
from ._types import Avatar, CacheList, Event, Stats, VerifyResult

AsyncProgressCallback = Callable[[Event], Union[None, Awaitable[None]]]

_MAX_HEADER = 64 << 10


class _Response:
    """An answer whose body is read as it comes (chunked, Content-Length, or to EOF)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.status = 0
        self.headers: Dict[str, str] = {}
        self._chunked = False
        self._left: Optional[int] = None  # bytes left with Content-Length
        self._chunk_left = 0
        self._eof = False

    async def read_head(self) -> None:
        line = await self.reader.readline()
        parts = line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise InternalError("assetd sent no HTTP status line", phase="local")
        self.status = int(parts[1])
        size = len(line)
        while True:
            line = await self.reader.readline()
            size += len(line)
            if size > _MAX_HEADER:
                raise InternalError("assetd's answer headers are too long", phase="local")
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            self.headers[k.strip().lower()] = v.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        if not self._chunked and "content-length" in self.headers:
            self._left = int(self.headers["content-length"])

    async def read_some(self) -> bytes:
        """The next piece of the body; b"" at its end."""
        if self._eof:
            return b""
        if self._chunked:
            if self._chunk_left == 0:
                size_line = await self.reader.readline()
                if not size_line:
                    raise InternalError("assetd's answer ended early", phase="local")
                self._chunk_left = int(size_line.split(b";")[0].strip(), 16)
                if self._chunk_left == 0:
                    self._eof = True
                    return b""
            data = await self.reader.read(min(self._chunk_left, 64 << 10))
            if not data:
                raise InternalError("assetd's answer ended early", phase="local")
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                await self.reader.readexactly(2)  # the chunk's CRLF
            return data
        if self._left is not None:
            if self._left == 0:
                self._eof = True
                return b""
            data = await self.reader.read(min(self._left, 64 << 10))
            if not data:
                raise InternalError("assetd's answer ended early", phase="local")
            self._left -= len(data)
            return data
        data = await self.reader.read(64 << 10)
        if not data:
            self._eof = True
        return data

    async def read_all(self) -> bytes:
        out = bytearray()
        while True:
            data = await self.read_some()
            if not data:
                return bytes(out)
            out += data
            if len(out) > c.MAX_BODY:
                raise InternalError("assetd's answer is over %d bytes" % c.MAX_BODY, phase="local")

    def close(self) -> None:
        self.writer.close()


class AsyncClient:
    """The asyncio twin of Client: the same methods, as coroutines.

    ``async with AsyncClient() as client: avatar = await client.load("rohan")``.
    aclose() (or leaving the block) hangs up every call still open.
    """

    def __init__(self, socket: Optional[str] = None) -> None:
        self.socket = c.socket_path(socket)
        self._open: "set[_Response]" = set()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Hangs up every call and stream still open."""
        for resp in list(self._open):
            resp.close()
        self._open.clear()

    async def _send(self, method: str, path: str, body: Optional[bytes] = None) -> _Response:
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket, limit=c.MAX_LINE)
        except OSError as e:
            raise c.transport_error(self.socket, e) from e
        resp = _Response(reader, writer)
        self._open.add(resp)
        try:
            head = "%s %s HTTP/1.1\r\nHost: assetd\r\nUser-Agent: %s\r\nConnection: close\r\n" % (
                method, path, c.USER_AGENT)
            if body is not None:
                head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
            elif method in ("POST", "PUT"):
                head += "Content-Length: 0\r\n"
            writer.write(head.encode("latin-1") + b"\r\n" + (body or b""))
            await writer.drain()
            await resp.read_head()
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            self._done(resp)
            raise c.transport_error(self.socket, e) from e
        except BaseException:
            self._done(resp)
            raise
        return resp

    def _done(self, resp: _Response) -> None:
        resp.close()
        self._open.discard(resp)

    async def _call(self, method: str, path: str, body: Optional[bytes] = None) -> Any:
        resp = await self._send(method, path, body)
        try:
            data = await resp.read_all()
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            raise c.transport_error(self.socket, e) from e
        finally:
            self._done(resp)
        if resp.status // 100 != 2:
            raise c.answer_error(resp.status, data)
        return c.decode(data) if data else None

    async def _stream(self, method: str, path: str) -> "AsyncEventStream":
        resp = await self._send(method, path)
        if resp.status != 200:
            try:
                data = await resp.read_all()
            finally:
                self._done(resp)
            raise c.answer_error(resp.status, data)
        return AsyncEventStream(self, resp)

    async def health(self) -> Dict[str, str]:
        return await self._call("GET", "/v1/health")

    async def load(self, avatar_id: str, on_progress: Optional[AsyncProgressCallback] = None,
                   pin: bool = False, background: bool = False) -> Avatar:
        """As Client.load; on_progress may be a plain function or a coroutine
        function. Cancelling the task stops this caller's wait only."""
        async with await self._stream("POST", c.load_path(avatar_id, pin, background)) as st:
            async for ev in st:
                if on_progress is not None:
                    r = on_progress(ev)
                    if inspect.isawaitable(r):
                        await r
                if ev.type == "completed":
                    if ev.avatar is None:
                        raise InternalError("a completed event without an avatar", phase="local",
                                            avatar_id=avatar_id)
                    return ev.avatar
                if ev.type == "failed":
                    raise ev.error or InternalError("a failed event without an error", phase="local",
                                                    avatar_id=avatar_id)
        raise c.stream_ended(avatar_id)

    async def retrieve(self, avatar_id: str) -> Optional[Avatar]:
        try:
            return Avatar.from_json(await self._call("GET", c.avatar_path(avatar_id)))
        except AvatarError as e:
            if e.code == "avatarAssetMissing" and e.reason == "notCached":
                return None
            raise

    async def list(self) -> CacheList:
        return CacheList.from_json(await self._call("GET", "/v1/avatars"))

    async def clear(self, avatar_id: str) -> List[str]:
        return (await self._call("DELETE", c.avatar_path(avatar_id)))["removed"]

    async def clear_all(self) -> List[str]:
        return (await self._call("DELETE", "/v1/avatars"))["removed"]

    async def clear_lru(self, keep: int) -> List[str]:
        return (await self._call("POST", "/v1/cache/lru?keep=%d" % int(keep)))["removed"]

    async def size(self, avatar_id: Optional[str] = None) -> int:
        if avatar_id is None:
            return (await self.stats()).total_size
        return (await self._call("GET", c.avatar_path(avatar_id, "/size")))["bytes"]

    async def stats(self) -> Stats:
        return Stats.from_json(await self._call("GET", "/v1/cache/stats"))

    async def cancel(self, avatar_id: str) -> List[str]:
        return (await self._call("DELETE", c.avatar_path(avatar_id, "/load")))["cancelled"]

    async def cancel_all(self) -> List[str]:
        return (await self._call("DELETE", "/v1/loads"))["cancelled"]

    async def verify(self, avatar_id: str) -> VerifyResult:
        return VerifyResult.from_json(await self._call("POST", c.avatar_path(avatar_id, "/verify")))

    async def set_session_token(self, token: str, app_id: Optional[str] = None) -> None:
        await self._call("PUT", "/v1/session", c.session_body(token, app_id))

    async def events(self) -> "AsyncEventStream":
        """Every event of the daemon: ``async with await client.events() as evs:
        async for ev in evs: ...``. Returns once the daemon has subscribed
        this caller, so no event after the call is missed."""
        return await self._stream("GET", "/v1/events")


class AsyncEventStream:
    """An NDJSON stream of events: an async iterator and an async context manager."""

    def __init__(self, client: AsyncClient, resp: _Response) -> None:
        self._client = client
        self._resp = resp
        self._buf = b""
        self._closed = False

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        while True:
            line, sep, rest = self._buf.partition(b"\n")
            if sep:
                self._buf = rest
                if line.strip():
                    return Event.from_json(c.parse_line(line))
                continue
            if len(self._buf) > c.MAX_LINE:
                await self.aclose()
                raise InternalError("a stream line over %d bytes" % c.MAX_LINE, phase="local")
            if self._closed:
                raise StopAsyncIteration
            try:
                data = await self._resp.read_some()
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                closed = self._closed
                await self.aclose()
                if closed:
                    raise StopAsyncIteration from None
                raise c.transport_error(self._client.socket, e) from e
            if not data:
                await self.aclose()
                raise StopAsyncIteration
            self._buf += data

    async def aclose(self) -> None:
        self._closed = True
        self._client._done(self._resp)

    async def __aenter__(self) -> "AsyncEventStream":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


__all__: Tuple[str, ...] = ("AsyncClient", "AsyncEventStream")
