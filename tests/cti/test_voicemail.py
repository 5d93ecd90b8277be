"""Voicemail, the pure parts (silence rule, ids, mailbox scoping) and the admin routes on the real admin application
over a SQLite store: who sees which message (operator, a supervisor of the mailbox's queue, agents refused),
range playback of the caller's channel, the heard mark."""

from __future__ import annotations

import io
import struct
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from cti.http.api import build_app
from cti.store import open_store
from cti.tokens import Role, TokenIssuer
from cti.voicemail import SilenceDetector, VoicemailMessage, insert_job, mailbox_queue, message_id
from cti.voicemail.routes import add_voicemail_routes
from tests.cti.test_api import AUTH, TOKEN, FakeMetrics
from tests.cti.test_contacts import Node

Client = TestClient[web.Request, web.Application]
TOKENS = TokenIssuer(b"v" * 32, ttl_s=600, clock=lambda: 5000.0)
LOUD = struct.pack("<160h", *([3000, -3000] * 80))  # 20 ms, RMS 3000
QUIET = bytes(320)


# -- pure -------------------------------------------------------------------------------------------------------


def test_silence_ends_the_message_counted_from_the_start_and_from_the_last_speech() -> None:
    detector = SilenceDetector(5.0)
    assert detector.get_timer() is None and not detector.expired(1e9)  # not started
    detector.start(100.0)
    assert detector.get_timer() == 105.0  # a caller who never speaks
    detector.push(QUIET, 101.0)
    assert detector.get_timer() == 105.0
    detector.push(LOUD, 103.0)
    assert detector.get_timer() == 108.0 and detector.voiced_frames == 1
    assert not detector.expired(107.99) and detector.expired(108.0)
    with pytest.raises(ValueError):
        SilenceDetector(0)


def test_ids_and_mailbox_scoping() -> None:
    first = message_id("call-1", 1_796_601_600.0)  # 2026-12-07 UTC
    assert first.startswith("vm-20261207-") and len(first) == len("vm-20261207-") + 12
    assert message_id("call-1", 1_796_601_600.0) == first != message_id("call-2", 1_796_601_600.0)
    assert mailbox_queue("support", {"sales", "support"}) == "support"
    assert mailbox_queue("after_hours", {"sales", "support"}) is None


# -- routes -----------------------------------------------------------------------------------------------------


def _wav(seconds: float) -> bytes:
    """A stored message: stereo, the caller (left) a ramp, the right channel silent."""
    frames = round(seconds * 8000)
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"".join(struct.pack("<hh", (n % 2000) - 1000, 0) for n in range(frames)))
    return out.getvalue()


MESSAGES = {
    "sales": VoicemailMessage(id="vm-20261207-000000000001", call_id="c1", mailbox="sales", queue="sales",
                              caller="5550001", started=1000.0, duration_s=1.0, path="vm-20261207-000000000001.wav"),
    "support": VoicemailMessage(id="vm-20261207-000000000002", call_id="c2", mailbox="support", queue="support",
                                caller="5550002", started=2000.0, duration_s=0.5,
                                path="vm-20261207-000000000002.wav"),
    "none": VoicemailMessage(id="vm-20261207-000000000003", call_id="c3", mailbox="after_hours", queue=None,
                             caller="5550003", started=3000.0, duration_s=0.5, path="vm-20261207-000000000003.wav"),
}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Client]:
    store = await open_store(tmp_path / "cti.sqlite3")
    folder = tmp_path / "voicemail"
    folder.mkdir()
    for message in MESSAGES.values():
        await store.run_batch(insert_job(message))
        (folder / message.path).write_bytes(_wav(message.duration_s))
    control = Node()  # sup1 supervises sales, sup2 support
    app = build_app(control, token=TOKEN, node="n", metrics=FakeMetrics())
    add_voicemail_routes(app, store=store, control=control, tokens=TOKENS, directory=folder, clock=lambda: 9000.0)
    client: Client = TestClient(TestServer(app, host="127.0.0.1", port=0))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()
        await store.close()


def _bearer(role: Role, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS.issue(role, subject).token}"}


async def _json(client: Client, method: str, path: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with client.request(method, path, headers=headers) as response:
        return response.status, await response.json()


async def test_the_operator_sees_every_message_a_supervisor_those_of_its_queues(api: Client) -> None:
    status, body = await _json(api, "GET", "/api/v1/voicemail", AUTH)
    assert status == 200 and [m["call_id"] for m in body["voicemail"]] == ["c3", "c2", "c1"]
    assert body["voicemail"][0] == {**MESSAGES["none"].to_json()}
    status, body = await _json(api, "GET", "/api/v1/voicemail", _bearer(Role.SUPERVISOR, "sup1"))
    assert status == 200 and [m["call_id"] for m in body["voicemail"]] == ["c1"]
    status, body = await _json(api, "GET", "/api/v1/voicemail?mailbox=support", AUTH)
    assert [m["call_id"] for m in body["voicemail"]] == ["c2"]
    status, body = await _json(api, "GET", "/api/v1/voicemail", _bearer(Role.AGENT, "1001"))
    assert (status, body["error"]["code"]) == (403, "voicemail.forbidden")
    status, body = await _json(api, "GET", "/api/v1/voicemail", {"Authorization": "Bearer forged"})
    assert status == 401
    for query in ("?unheard=maybe", "?limit=0", "?box=sales"):
        status, body = await _json(api, "GET", f"/api/v1/voicemail{query}", AUTH)
        assert (status, body["error"]["code"]) == (400, "bad_parameter"), query


async def test_audio_is_the_callers_channel_with_ranges_and_scoped(api: Client) -> None:
    sales = MESSAGES["sales"]
    async with api.get(f"/api/v1/voicemail/{sales.id}/audio", headers=_bearer(Role.SUPERVISOR, "sup1")) as answer:
        assert answer.status == 200 and answer.headers["Content-Type"] == "audio/wav"
        whole = await answer.read()
    with wave.open(io.BytesIO(whole)) as wav:
        assert (wav.getnchannels(), wav.getnframes()) == (1, 8000)
        assert struct.unpack("<h", wav.readframes(2)[2:])[0] == -999  # the left channel's second sample
    async with api.get(f"/api/v1/voicemail/{sales.id}/audio", headers={**AUTH, "Range": "bytes=44-143"}) as answer:
        assert answer.status == 206 and answer.headers["Content-Range"] == f"bytes 44-143/{len(whole)}"
        assert await answer.read() == whole[44:144]
    async with api.get(f"/api/v1/voicemail/{sales.id}/audio?channel=both", headers=AUTH) as answer:
        assert answer.status == 200 and len(await answer.read()) == 44 + 8000 * 4
    status, body = await _json(api, "GET", f"/api/v1/voicemail/{sales.id}/audio",
                               {**AUTH, "Range": f"bytes={len(whole)}-"})
    assert (status, body["error"]["code"]) == (416, "voicemail.range_not_satisfiable")
    # sup2 does not supervise sales: the message does not exist for it; nor does an unknown id
    status, body = await _json(api, "GET", f"/api/v1/voicemail/{sales.id}/audio", _bearer(Role.SUPERVISOR, "sup2"))
    assert (status, body["error"]["code"]) == (404, "voicemail.not_found")
    status, body = await _json(api, "GET", "/api/v1/voicemail/vm-nope/audio", AUTH)
    assert status == 404
    status, body = await _json(api, "GET", f"/api/v1/voicemail/{sales.id}/audio?channel=agent", AUTH)
    assert status == 400


async def test_heard_is_kept_from_the_first_listener(api: Client) -> None:
    support = MESSAGES["support"]
    status, body = await _json(api, "POST", f"/api/v1/voicemail/{support.id}/heard", _bearer(Role.SUPERVISOR, "sup2"))
    assert status == 200 and (body["heard"], body["heard_by"], body["heard_at"]) == (True, "supervisor:sup2", 9000.0)
    status, body = await _json(api, "POST", f"/api/v1/voicemail/{support.id}/heard", AUTH)
    assert body["heard_by"] == "supervisor:sup2"
    status, body = await _json(api, "GET", "/api/v1/voicemail?unheard=true", AUTH)
    assert [m["call_id"] for m in body["voicemail"]] == ["c3", "c1"]
    status, body = await _json(api, "POST", f"/api/v1/voicemail/{MESSAGES['none'].id}/heard",
                               _bearer(Role.SUPERVISOR, "sup1"))
    assert status == 404  # a mailbox of no queue is the operator's
