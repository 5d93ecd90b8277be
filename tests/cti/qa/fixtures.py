"""A QA application on a real aiohttp server over a real store (SQLite or PostgreSQL), with WAV recordings on disk,
a fake directory of teams and scopes, signed tokens and a hand-stepped clock."""

from __future__ import annotations

import datetime as dt
import struct
import wave
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from acd import AgentId, CallId, QueueId
from cti.qa.evaluations import EvaluationService
from cti.qa.library import Library
from cti.qa.routes import add_qa_routes
from cti.qa.service import QaService
from cti.store import Recording, RecordingSerial, Store
from cti.tokens import Role, TokenIssuer

OPERATOR_TOKEN = "op-token-for-qa-tests"
RATE = 8000
LEFT, RIGHT = 1000, -1000  # caller and agent sample values of the test recordings


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Directory:
    teams = {"1001": "blue", "1002": "red"}
    scopes = {"sup1": (frozenset({"sales"}), frozenset({"blue"})), "sup2": (frozenset({"sales"}), frozenset({"blue"})),
              "sup3": (frozenset({"support"}), frozenset({"red"}))}

    def agent_team(self, agent_id: str) -> str | None:
        return self.teams.get(agent_id)

    def supervisor_scope(self, supervisor_id: str) -> tuple[frozenset[str], frozenset[str]]:
        return self.scopes[supervisor_id]


def write_wav(path: Path, seconds: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack("<hh", LEFT, RIGHT) * int(seconds * RATE))


# serial -> (agent, queue)
RECORDINGS = {"20260603-qa-0001": ("1001", "sales"), "20260603-qa-0002": ("1002", "support"),
              "20260603-qa-0003": ("1001", "sales")}


@dataclass
class QaApp:
    client: TestClient[web.Request, web.Application]
    clock: Clock
    store: Store
    tokens: TokenIssuer
    recordings: Path
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    service: EvaluationService | None = None

    def auth(self, who: str) -> dict[str, str]:
        """``operator``, ``agent:<id>`` or ``supervisor:<id>``."""
        if who == "operator":
            return {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        role, subject = who.split(":")
        return {"Authorization": f"Bearer {self.tokens.issue(Role(role), subject).token}"}

    async def call(self, who: str | None, method: str, path: str, body: Any = None,
                   headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        h = dict(self.auth(who)) if who else {}
        h.update(headers or {})
        async with self.client.request(method, path, json=body, headers=h) as r:
            if r.content_type == "application/json":
                return r.status, await r.json()
            return r.status, await r.read()


async def qa_app(store: Store, tmp_path: Path, now: float,
                 holidays: frozenset[dt.date] = frozenset()) -> AsyncIterator[QaApp]:
    clock = Clock(now)
    tokens = TokenIssuer(b"k" * 32, ttl_s=3600, clock=clock)
    recordings = tmp_path / "recordings"
    for serial, (agent, queue) in RECORDINGS.items():
        write_wav(recordings / f"{serial}.wav", 2.0)
        await store.save_recording(Recording(serial=RecordingSerial(serial), call_id=CallId(f"c-{serial}"),
                                             path=str(recordings / f"{serial}.wav"), started=now - 100,
                                             ended=now - 98, duration_s=2.0, agent_id=AgentId(agent),
                                             queue_id=QueueId(queue)))
    events: list[tuple[str, dict[str, Any]]] = []
    notices: list[str] = []
    service = QaService(store, zone="Asia/Shanghai", clock=clock, directory=Directory(),
                        publish=lambda t, d: events.append((t, dict(d))))
    evaluations = EvaluationService(service, holidays=holidays)
    library = Library(evaluations, recordings, notify=lambda text, _now: notices.append(text))
    app = web.Application()
    add_qa_routes(app, service=service, evaluations=evaluations, library=library, tokens=tokens,
                  operator_token=OPERATOR_TOKEN)
    async with TestClient(TestServer(app)) as client:
        yield QaApp(client=client, clock=clock, store=store, tokens=tokens, recordings=recordings, events=events,
                    notices=notices, service=evaluations)
