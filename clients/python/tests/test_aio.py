"""The asyncio client against the real daemon (conftest.py)."""

import asyncio

import pytest

import assetd
from conftest import BIG, LIMIT


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, LIMIT * 2))


def test_load_and_cache_calls(daemon):
    async def main():
        async with assetd.AsyncClient(daemon.socket) as c:
            seen = []

            async def progress(ev):
                seen.append(ev.type)
            av = await c.load("rohan", on_progress=progress)
            assert seen[-1] == "completed"
            assert (await c.retrieve("rohan")).files == av.files
            assert await c.size("rohan") == av.size_bytes
            assert (await c.stats()).total_entries >= 1
            assert "rohan" in [a.avatar_id for a in (await c.list()).avatars]
            assert (await c.verify("rohan")).checked == len(av.assets)
            assert await c.retrieve("aria-none") is None
            with pytest.raises(assetd.AvatarIDUnrecognized):
                await c.load("nobody-here")
            with pytest.raises(assetd.BadRequest):
                await c.set_session_token("")
    run(main())


def test_abort_one_waiter_other_keeps_waiting(daemon):
    async def main():
        async with assetd.AsyncClient(daemon.socket) as c:
            a_started, b_events = asyncio.Event(), asyncio.Queue()
            a = asyncio.ensure_future(c.load(BIG, on_progress=lambda ev: a_started.set()))
            b = asyncio.ensure_future(c.load(BIG, on_progress=b_events.put_nowait))
            await a_started.wait()
            await b_events.get()
            a.cancel()
            with pytest.raises(asyncio.CancelledError):
                await a
            # b still waits, and the load still moves for it.
            first = await b_events.get()
            while True:
                ev = await b_events.get()
                if ev.bytes_done > first.bytes_done:
                    break
            assert not b.done()
            loads = (await c.list()).loads
            assert [x.avatar_id for x in loads] == [BIG]
            assert await c.cancel(BIG) == [BIG]
            with pytest.raises(assetd.Cancelled) as ei:
                await b
            assert ei.value.code == "cancelled"
    run(main())


def test_events_async_iterator(daemon):
    async def main():
        async with assetd.AsyncClient(daemon.socket) as c:
            async with await c.events() as evs:
                load = asyncio.ensure_future(c.load("aria"))
                types = []
                async for ev in evs:
                    if ev.avatar_id == "aria":
                        types.append(ev.type)
                        if ev.type in ("completed", "failed"):
                            break
                await load
            assert types[-1] == "completed"
            assert await c.clear("aria") == ["aria"]
    run(main())


def test_daemon_not_running_async(tmp_path):
    async def main():
        async with assetd.AsyncClient(str(tmp_path / "none.sock")) as c:
            with pytest.raises(assetd.DaemonNotRunning):
                await c.health()
    run(main())
