"""assetd: the Python client of the assetd daemon.

assetd downloads, verifies and caches avatar assets for a whole device;
this package talks to it over its Unix socket (docs/api.md), with the
AvatarKit SDK's AvatarManager names::

    import assetd

    with assetd.Client() as client:
        avatar = client.load("rohan", on_progress=lambda ev: print(ev.progress))
        for path, local in avatar.files.items():
            print(path, local)

AsyncClient is the asyncio twin. Errors are AvatarError subclasses named
after the SDKs' codes (AvatarAssetMissing, FailedToDownloadAvatarAssets,
...); DaemonNotRunning when nothing listens on the socket.
"""

from ._aio import AsyncClient, AsyncEventStream
from ._client import Client, EventStream
from ._common import DEFAULT_SOCKET
from ._errors import *  # noqa: F401,F403
from ._errors import BY_CODE, __all__ as _error_names
from ._types import Asset, Avatar, Background, CacheList, Event, Load, Stats, VerifyResult

__version__ = "0.1.0"

#: error code ("avatarAssetMissing") -> its AvatarError subclass
ERRORS = dict(BY_CODE)

__all__ = [
    "Client", "AsyncClient", "EventStream", "AsyncEventStream", "DEFAULT_SOCKET", "ERRORS",
    "Asset", "Avatar", "Background", "CacheList", "Event", "Load", "Stats", "VerifyResult",
] + list(_error_names)
