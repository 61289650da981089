"""The shared wire fixture (clients/fixtures/wire.json, generated from the
Go package apitype): every shape decodes and re-encodes unchanged, so a
field the daemon sends that this package does not know fails here; every
error code has its class."""

import json

import assetd
from assetd import _errors
from conftest import FIXTURES

WIRE = json.loads((FIXTURES / "wire.json").read_text())
SHAPES = WIRE["shapes"]

DECODERS = {
    "Asset": assetd.Asset,
    "Avatar": assetd.Avatar,
    "Load": assetd.Load,
    "Event": assetd.Event,
    "List": assetd.CacheList,
    "Stats": assetd.Stats,
    "VerifyResult": assetd.VerifyResult,
}


def test_every_shape_is_known():
    plain = {"Size", "Health", "Session", "Removed", "Cancelled", "Error", "ErrorResponse"}
    assert set(SHAPES) == set(DECODERS) | plain, "a shape was added to apitype: teach the client"


def test_shapes_round_trip():
    for name, cls in DECODERS.items():
        assert cls.from_json(SHAPES[name]).to_json() == SHAPES[name], name


def test_error_round_trip():
    body = SHAPES["Error"]
    assert _errors.error_from_body(body).to_body() == body
    assert assetd.AvatarError.__init__.__kwdefaults__.keys() >= {"hint"}
    e = _errors.error_from_body(dict(body, code="failedToDownloadAvatarAssets", hint="check the proxy"))
    assert isinstance(e, assetd.FailedToDownloadAvatarAssets)
    assert (e.phase, e.transient, e.reason, e.avatar_id, e.asset, e.http_status, e.server_code, e.hint) == (
        "phase", True, "reason", "avatarId", "asset", body["httpStatus"], "serverCode", "check the proxy")
    assert SHAPES["ErrorResponse"]["error"] == body


def test_plain_answers_have_the_keys_the_client_reads():
    assert set(SHAPES["Size"]) == {"bytes"}
    assert set(SHAPES["Removed"]) == {"removed"}
    assert set(SHAPES["Cancelled"]) == {"cancelled"}
    assert set(SHAPES["Session"]) == {"sessionToken", "appId"}
    assert set(SHAPES["Health"]) == {"status", "version"}


def test_every_code_has_a_class_and_its_recovery():
    for c in WIRE["errorCodes"]:
        cls = assetd.ERRORS.get(c["code"])
        assert cls is not None, "no class for " + c["code"]
        assert cls.code == c["code"]
        assert _errors.RECOVERY[c["code"]] == c["recovery"], c["code"]
        if c["sdk"]:
            # The SDKs' codes keep their names: avatarAssetMissing -> AvatarAssetMissing.
            assert cls.__name__ == c["code"][0].upper() + c["code"][1:]
    assert set(assetd.ERRORS) == {c["code"] for c in WIRE["errorCodes"]}


def test_states_and_event_types():
    assert set(WIRE["eventTypes"]) == {"progress", "completed", "failed", "state"}
    assert set(WIRE["waiting"]) == {"queued", "retrying"}
    assert {"downloading", "ready", "stale", "damaged", "failed", "completed"} == set(WIRE["states"])


def test_time_parsing():
    from assetd._types import format_time, parse_time
    t = parse_time("2026-11-25T10:00:00.123456789Z")
    assert (t.microsecond, t.utcoffset().total_seconds()) == (123456, 0)
    assert format_time(parse_time("2026-11-25T10:00:00Z")) == "2026-11-25T10:00:00Z"
    assert parse_time("2026-11-25T12:00:00+02:00") == parse_time("2026-11-25T10:00:00Z")
