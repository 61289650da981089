"""The sync Client against the real daemon (conftest.py)."""

import hashlib
import os
import threading

import pytest

import assetd
from conftest import BIG, LIMIT, wait_until


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def test_load_with_progress_then_cache_hit(client, daemon):
    events = []
    av = client.load("rohan", on_progress=events.append)
    assert isinstance(av, assetd.Avatar)
    assert av.avatar_id == "rohan" and av.state == "ready"
    assert events[-1].type == "completed" and events[-1].avatar == av
    progress = [e for e in events if e.type == "progress"]
    assert progress, "no progress event reached on_progress"
    assert all(0 <= e.progress <= 1 for e in progress)
    src = daemon.tmp / "src" / "rohan"
    want = {str(p.relative_to(src)) for p in src.rglob("*") if p.is_file() and p.name != "VERSION"}
    assert set(av.files) == want
    for a in av.assets:
        assert os.path.getsize(a.local_path) == a.size
        assert sha256(a.local_path) == a.sha256 == sha256(str(src / a.path))
    assert av.last_used is not None and av.last_used.tzinfo is not None

    again = []
    hit = client.load("rohan", on_progress=again.append)
    assert hit.files == av.files
    assert again[-1].type == "completed"
    assert all(e.bytes_done == 0 for e in again[:-1]), "a cache hit downloads nothing"
    assert client.retrieve("rohan").files == av.files
    assert client.size("rohan") == av.size_bytes > 0
    assert client.size() >= av.size_bytes
    st = client.stats()
    assert st.total_entries >= 1 and st.total_size >= av.size_bytes
    assert "rohan" in [a.avatar_id for a in client.list().avatars]
    res = client.verify("rohan")
    assert res.checked == len(av.assets) and res.damaged == []


def test_unknown_id(client):
    with pytest.raises(assetd.AvatarIDUnrecognized) as ei:
        client.load("nobody-here")
    e = ei.value
    assert e.code == "avatarIDUnrecognized" and e.avatar_id == "nobody-here"
    assert e.recovery == "Check the avatar ID exists and is published."
    assert isinstance(e, assetd.AvatarError)
    with pytest.raises(assetd.AvatarIDUnrecognized) as ei:
        client.load("not valid")
    assert ei.value.reason == "invalidId"


def test_not_cached(client):
    assert client.retrieve("aria") is None
    with pytest.raises(assetd.AvatarAssetMissing) as ei:
        client.size("aria")
    assert ei.value.reason == "notCached"
    with pytest.raises(assetd.AvatarAssetMissing):
        client.clear("aria")


def test_avatar_missing_locally(client):
    av = client.load("mei")
    os.remove(av.assets[0].local_path)

    def missing():
        try:
            client.retrieve("mei")
        except assetd.AvatarAssetMissing as e:
            return e
        return None
    e = wait_until("retrieve sees the file gone", missing)
    assert e.reason == "damaged" and e.avatar_id == "mei"
    assert e.recovery == "Re-download with AvatarManager.load()."
    healed = client.load("mei")
    assert os.path.exists(healed.files[av.assets[0].path])
    assert client.clear("mei") == ["mei"]
    assert client.retrieve("mei") is None


def test_cancel_from_another_caller(client, daemon):
    started = threading.Event()
    result = {}

    def waiter():
        with assetd.Client(daemon.socket) as mine:
            try:
                result["avatar"] = mine.load(BIG, on_progress=lambda ev: started.set())
            except assetd.AvatarError as e:
                result["error"] = e

    t = threading.Thread(target=waiter)
    t.start()
    try:
        assert started.wait(LIMIT), "no progress from the load"
        assert client.cancel(BIG) == [BIG]
    finally:
        t.join(LIMIT)
    assert not t.is_alive()
    assert isinstance(result.get("error"), assetd.Cancelled), result
    assert client.cancel(BIG) == []
    assert BIG not in [x.avatar_id for x in client.list().loads]


def test_progress_callback_raising_stops_only_this_wait(client, daemon):
    class Enough(Exception):
        pass

    def stop(ev):
        raise Enough

    with pytest.raises(Enough):
        client.load(BIG, on_progress=stop, background=True)
    client.cancel_all()
    wait_until("no load left", lambda: not client.list().loads)


def test_events_stream(client, daemon):
    with client.events() as evs:
        other = assetd.Client(daemon.socket)
        t = threading.Thread(target=other.load, args=("aria",))
        t.start()
        seen = []
        for ev in evs:
            if ev.avatar_id == "aria":
                seen.append(ev)
                if ev.type in ("completed", "failed"):
                    break
        t.join(LIMIT)
        other.close()
    assert seen[-1].type == "completed" and seen[-1].avatar is not None
    assert seen[-1].avatar.files.keys() == client.retrieve("aria").files.keys()


def test_events_close_from_another_thread(client):
    evs = client.events()
    got = []
    t = threading.Thread(target=lambda: got.extend(evs))
    t.start()
    evs.close()
    t.join(LIMIT)
    assert not t.is_alive()


def test_session_and_lru(client):
    client.set_session_token("python-test-token", app_id="kiosk")
    with pytest.raises(assetd.BadRequest):
        client.set_session_token("")
    client.load("rohan")
    removed = client.clear_lru(0)
    assert "rohan" in removed
    assert client.retrieve("rohan") is None


def test_daemon_not_running(tmp_path):
    with assetd.Client(str(tmp_path / "none.sock")) as c:
        with pytest.raises(assetd.DaemonNotRunning) as ei:
            c.stats()
    assert str(tmp_path / "none.sock") in str(ei.value)
    assert ei.value.recovery.startswith("Start it with")


def test_default_socket_from_env(monkeypatch, daemon):
    monkeypatch.setenv("ASSETD_SOCKET", daemon.socket)
    with assetd.Client() as c:
        assert c.socket == daemon.socket
        assert c.health()["status"] == "ok"
    monkeypatch.delenv("ASSETD_SOCKET")
    assert assetd.Client().socket == "/run/assetd/assetd.sock"
