"""``mount_qa`` as the node wires it: the real bus, publisher and notice service (schemas validated on the bus):
a published library entry is a ``notice.broadcast`` to every agent plus ``qa.library.published``; an evaluation is
``qa.evaluation.published``."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from acd import AgentId, CallId, QueueId
from config.loader import demo_config_path, load_config
from cti.events.bus import Bus
from cti.events.publish import Publisher
from cti.floor.notices import NoticeService
from cti.qa.routes import mount_qa
from cti.store import Recording, RecordingSerial, Store
from cti.tokens import Role, TokenIssuer
from tests.cti.qa.fixtures import Directory, write_wav
from tests.cti.qa.test_scoring import FORM, full


async def test_library_notice_and_events_on_the_bus(store: Store, tmp_path: Path) -> None:
    config = load_config(demo_config_path()).config.model_copy(update={"data_dir": str(tmp_path)})
    bus = Bus(validate_schemas=True)
    seen = bus.subscribe(["notice.*", "qa.*"])
    tokens = TokenIssuer(b"s" * 32, ttl_s=600, clock=lambda: 1e9)
    serial = "20260603-s1-0001"
    write_wav(tmp_path / "recordings" / f"{serial}.wav", 1.0)
    await store.save_recording(Recording(serial=RecordingSerial(serial), call_id=CallId("c1"),
                                         path=str(tmp_path / "recordings" / f"{serial}.wav"), started=1e9,
                                         agent_id=AgentId("1001"), queue_id=QueueId("sales")))
    app = web.Application()
    mount_qa(app, store=store, config=config, directory=Directory(), publisher=Publisher(bus, "n"),
             notices=NoticeService(bus, "n"), tokens=tokens)
    operator = {"Authorization": f"Bearer {config.operator_token}"}
    sup = {"Authorization": f"Bearer {tokens.issue(Role.SUPERVISOR, 'sup1').token}"}
    async with TestClient(TestServer(app)) as client:
        async with client.post("/api/v1/qa/library", headers=operator,
                               json={"recording_serial": serial, "reason": "model call"}) as r:
            assert r.status == 201
            entry = (await r.json())["entry_id"]
        async with client.post(f"/api/v1/qa/library/{entry}/review", headers=sup,
                               json={"approve": True, "note": "listen to the greeting " * 30}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "qa.bad_note"
        async with client.post(f"/api/v1/qa/library/{entry}/review", headers=sup,
                               json={"approve": True, "note": "listen to the greeting", "tags": ["greeting"]}) as r:
            assert r.status == 200
        async with client.post("/api/v1/qa/forms", headers=operator, json={"form": FORM}) as r:
            assert r.status == 201
        async with client.post("/api/v1/qa/evaluations", headers=sup, json={
                "recording_serial": serial, "form_id": "INBOUND-STD", "scores": full()}) as r:
            assert r.status == 201
    got = [seen.get_nowait() for _ in range(seen.qsize())]
    assert [e.type for e in got] == ["notice.broadcast", "qa.library.published", "qa.evaluation.published"]
    notice = got[0].data
    assert notice["audience"] == ["*"] and notice["sender"] == "qa" and serial in notice["text"]
    assert got[2].data["agent_id"] == "1001" and got[2].data["total"] == 100.0
