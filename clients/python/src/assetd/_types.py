"""The API's JSON shapes (docs/api.md, the Go package apitype) as dataclasses.

Each has from_json, which takes the decoded JSON object, and to_json, which
gives it back: the tests decode the shared wire fixture and expect it
unchanged, so a field the Go side adds fails them until it is learned here.
"""

import datetime
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ._errors import AvatarError, error_from_body

JSON = Dict[str, Any]

_RFC3339 = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def parse_time(s: str) -> datetime.datetime:
    """Parses Go's RFC 3339 times (nanoseconds, "Z"), which Python 3.9's
    fromisoformat does not take."""
    m = _RFC3339.match(s)
    if not m:
        raise ValueError("not an RFC 3339 time: %r" % s)
    frac = (m.group(2) or ".0")[1:7].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.datetime.fromisoformat("%s.%s%s" % (m.group(1), frac, zone))


def format_time(t: datetime.datetime) -> str:
    s = t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        s += (".%06d" % t.microsecond).rstrip("0")
    return s + "Z"


def _drop_none(d: JSON) -> JSON:
    return {k: v for k, v in d.items() if v is not None}


@dataclass(frozen=True)
class Asset:
    """One file of a cached avatar. local_path may be opened read-only; it
    does not change while this version of the avatar is cached."""

    path: str
    size: int
    sha256: str
    local_path: str

    @classmethod
    def from_json(cls, d: JSON) -> "Asset":
        return cls(path=d["path"], size=d["size"], sha256=d["sha256"], local_path=d["localPath"])

    def to_json(self) -> JSON:
        return {"path": self.path, "size": self.size, "sha256": self.sha256, "localPath": self.local_path}


@dataclass(frozen=True)
class Avatar:
    """A cached avatar. files maps each asset path to the local file."""

    avatar_id: str
    version: str
    state: str
    size_bytes: int
    last_used: Optional[datetime.datetime]
    pinned: bool
    assets: List[Asset]
    source: Optional[str] = None
    damaged: List[str] = field(default_factory=list)
    #: the raw time string, kept so that to_json gives back what came
    last_used_raw: Optional[str] = field(default=None, repr=False, compare=False)

    @property
    def files(self) -> Dict[str, str]:
        """Asset path -> local path, for every file of the avatar."""
        return {a.path: a.local_path for a in self.assets}

    @classmethod
    def from_json(cls, d: JSON) -> "Avatar":
        raw = d.get("lastUsed")
        return cls(
            avatar_id=d["avatarId"],
            version=d.get("version", ""),
            state=d.get("state", ""),
            size_bytes=d.get("sizeBytes", 0),
            last_used=parse_time(raw) if raw else None,
            pinned=d.get("pinned", False),
            assets=[Asset.from_json(a) for a in d.get("assets") or []],
            source=d.get("source"),
            damaged=list(d.get("damaged") or []),
            last_used_raw=raw,
        )

    def to_json(self) -> JSON:
        last = self.last_used_raw
        if last is None and self.last_used is not None:
            last = format_time(self.last_used)
        return _drop_none({
            "avatarId": self.avatar_id,
            "version": self.version,
            "state": self.state,
            "sizeBytes": self.size_bytes,
            "lastUsed": last,
            "pinned": self.pinned,
            "source": self.source,
            "damaged": self.damaged or None,
            "assets": [a.to_json() for a in self.assets],
        })


@dataclass(frozen=True)
class Load:
    """A load in flight; waiting is None while it moves, else "queued" or "retrying"."""

    avatar_id: str
    state: str
    progress: float
    bytes_done: int
    bytes_total: int
    background: bool = False
    waiting: Optional[str] = None

    @classmethod
    def from_json(cls, d: JSON) -> "Load":
        return cls(avatar_id=d["avatarId"], state=d.get("state", ""), progress=d.get("progress", 0),
                   bytes_done=d.get("bytesDone", 0), bytes_total=d.get("bytesTotal", 0),
                   background=d.get("background", False), waiting=d.get("waiting"))

    def to_json(self) -> JSON:
        return _drop_none({"avatarId": self.avatar_id, "state": self.state, "progress": self.progress,
                           "bytesDone": self.bytes_done, "bytesTotal": self.bytes_total,
                           "background": self.background or None, "waiting": self.waiting})


@dataclass(frozen=True)
class Event:
    """One event of a load's progress stream or of events().

    type is progress, completed, failed or state. A completed event carries
    the avatar, a failed one the error. waiting is None while a load moves,
    "queued" or "retrying" while it waits; while retrying, attempt of
    max_attempts is the attempt to come and last_error why the last failed.
    """

    type: str
    avatar_id: str
    state: str
    progress: float = 0
    bytes_done: int = 0
    bytes_total: int = 0
    avatar: Optional[Avatar] = None
    error: Optional[AvatarError] = None
    bytes_received: Optional[int] = None
    waiting: Optional[str] = None
    attempt: Optional[int] = None
    max_attempts: Optional[int] = None
    last_error: Optional[str] = None
    from_cache: bool = False

    @classmethod
    def from_json(cls, d: JSON) -> "Event":
        av, err = d.get("avatar"), d.get("error")
        return cls(
            type=d["type"], avatar_id=d.get("avatarId", ""), state=d.get("state", ""),
            progress=d.get("progress", 0), bytes_done=d.get("bytesDone", 0), bytes_total=d.get("bytesTotal", 0),
            avatar=Avatar.from_json(av) if av else None,
            error=error_from_body(err) if err else None,
            bytes_received=d.get("bytesReceived"), waiting=d.get("waiting"), attempt=d.get("attempt"),
            max_attempts=d.get("maxAttempts"), last_error=d.get("lastError"),
            from_cache=d.get("fromCache", False),
        )

    def to_json(self) -> JSON:
        return _drop_none({
            "type": self.type, "avatarId": self.avatar_id, "state": self.state, "progress": self.progress,
            "bytesDone": self.bytes_done, "bytesTotal": self.bytes_total,
            "avatar": self.avatar.to_json() if self.avatar else None,
            "error": self.error.to_body() if self.error else None,
            "bytesReceived": self.bytes_received, "waiting": self.waiting, "attempt": self.attempt,
            "maxAttempts": self.max_attempts, "lastError": self.last_error,
            "fromCache": self.from_cache or None,
        })


@dataclass(frozen=True)
class CacheList:
    """Every cached avatar and every load in flight (list())."""

    avatars: List[Avatar]
    loads: List[Load]

    @classmethod
    def from_json(cls, d: JSON) -> "CacheList":
        return cls(avatars=[Avatar.from_json(a) for a in d.get("avatars") or []],
                   loads=[Load.from_json(x) for x in d.get("loads") or []])

    def to_json(self) -> JSON:
        return {"avatars": [a.to_json() for a in self.avatars], "loads": [x.to_json() for x in self.loads]}


@dataclass(frozen=True)
class Background:
    """Whether the daemon holds its periodic refreshes, and why: outside every
    refresh window (until window_opens) or on a metered link."""

    held: bool = False
    outside_window: bool = False
    window_opens: Optional[datetime.datetime] = None
    metered_link: bool = False
    #: the raw time string, kept so that to_json gives back what came
    window_opens_raw: Optional[str] = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: JSON) -> "Background":
        raw = d.get("windowOpens")
        return cls(held=d.get("held", False), outside_window=d.get("outsideWindow", False),
                   window_opens=parse_time(raw) if raw else None, metered_link=d.get("meteredLink", False),
                   window_opens_raw=raw)

    def to_json(self) -> JSON:
        opens = self.window_opens_raw
        if opens is None and self.window_opens is not None:
            opens = format_time(self.window_opens)
        return _drop_none({"held": self.held, "outsideWindow": self.outside_window or None,
                           "windowOpens": opens, "meteredLink": self.metered_link or None})


@dataclass(frozen=True)
class Stats:
    """The cache's figures (stats()). total_size counts each distinct file once.
    unused_blobs and unused_bytes are files no cached avatar uses (part of
    blobs and total_size); partials and partial_bytes are downloads kept for
    resume (not part of them). clear_lru and clear_all remove both."""

    total_entries: int
    total_size: int
    max_size: int
    pinned: int
    damaged: int
    stale: int
    blobs: int
    loads_in_flight: int
    reserve_bytes: int
    free_bytes: int
    unused_blobs: int = 0
    unused_bytes: int = 0
    partials: int = 0
    partial_bytes: int = 0
    background: Background = field(default_factory=Background)

    _KEYS = ("totalEntries", "totalSize", "maxSize", "pinned", "damaged", "stale", "blobs",
             "loadsInFlight", "reserveBytes", "freeBytes", "unusedBlobs", "unusedBytes", "partials",
             "partialBytes")

    @classmethod
    def from_json(cls, d: JSON) -> "Stats":
        return cls(*(d.get(k, 0) for k in cls._KEYS), background=Background.from_json(d.get("background") or {}))

    def to_json(self) -> JSON:
        vals = (self.total_entries, self.total_size, self.max_size, self.pinned, self.damaged, self.stale,
                self.blobs, self.loads_in_flight, self.reserve_bytes, self.free_bytes, self.unused_blobs,
                self.unused_bytes, self.partials, self.partial_bytes)
        return dict(zip(self._KEYS, vals), background=self.background.to_json())


@dataclass(frozen=True)
class VerifyResult:
    """What verify() found: damaged lists the files that failed their hash;
    healing says a re-fetch was started."""

    avatar_id: str
    state: str
    checked: int
    damaged: List[str] = field(default_factory=list)
    healing: bool = False

    @classmethod
    def from_json(cls, d: JSON) -> "VerifyResult":
        return cls(avatar_id=d["avatarId"], state=d.get("state", ""), checked=d.get("checked", 0),
                   damaged=list(d.get("damaged") or []), healing=d.get("healing", False))

    def to_json(self) -> JSON:
        return _drop_none({"avatarId": self.avatar_id, "state": self.state, "checked": self.checked,
                           "damaged": self.damaged or None, "healing": self.healing or None})
