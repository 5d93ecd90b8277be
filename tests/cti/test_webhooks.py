"""Webhooks against a real SQLite outbox, a real bus and a real HTTP receiver on 127.0.0.1 (short delays)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from structlog.testing import capture_logs

from config.schema import WebhookConfig, WebhookRetryConfig
from cti.cli.webhooks import webhooks
from cti.events.bus import Bus
from cti.events.registry import Envelope, EventIdFactory
from cti.events.webhooks import (
    Verdict,
    WebhookDispatcher,
    backoff_delay,
    check_patterns,
    classify,
    event_matches,
    sign,
    verify_signature,
)
from cti.http.api import build_app
from cti.http.webhook_routes import add_webhook_routes, webhook_metrics
from cti.store import OutboxId, OutboxStatus, SqliteStore, StoreBusyError, open_store

SECRET = "s3cret-s3cret-s3cret"
TOKEN = "test-operator-token-0001"
Behaviour = Callable[[str, int, int], int]  # (event id, attempt of this id, attempt overall) -> status


# ---------------------------------------------------------------------------------------------- pure parts
def test_signature_is_hmac_of_timestamp_dot_body_and_verifies() -> None:
    import hashlib
    import hmac

    body = b'{"id":"x"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert sign(SECRET, 1700000000, body) == "sha256=" + expected
    header = sign(SECRET, 1700000000, body)
    assert verify_signature(SECRET, "1700000000", body, header, tolerance_s=300, now=1700000100)
    assert not verify_signature(SECRET, "1700000000", body + b" ", header, now=1700000000)  # body changed
    assert not verify_signature("other-secret-xxxxxxx", 1700000000, body, header, now=1700000000)
    assert not verify_signature(SECRET, "1700000001", body, header, now=1700000000)  # timestamp changed
    assert not verify_signature(SECRET, "1700000000", body, header, tolerance_s=300, now=1700000301)  # too old
    assert not verify_signature(SECRET, "soon", body, header, now=1700000000)
    assert not verify_signature(SECRET, "1700000000", body, header.removeprefix("sha256="), now=1700000000)


def test_backoff_grows_between_base_and_max_with_full_jitter() -> None:
    base, maximum = 1.0, 300.0
    ceilings = [backoff_delay(n, base=base, maximum=maximum, rand=1.0) for n in range(1, 13)]
    assert ceilings[:5] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert ceilings[-1] == maximum and ceilings == sorted(ceilings)
    for n in range(1, 80):
        for rand in (0.0, 0.3, 0.999):
            delay = backoff_delay(n, base=base, maximum=maximum, rand=rand)
            assert base <= delay <= min(maximum, base * 2.0 ** (n - 1))


def test_event_patterns() -> None:
    assert event_matches(["*"], "call.ended")
    assert event_matches(["agent.*"], "agent.state_changed")
    assert not event_matches(["call.*"], "callback.requested")
    assert event_matches(["call.ended"], "call.ended") and not event_matches(["call.ended"], "call.end")
    for bad in (["ca*ll"], [".*"], [""], []):
        with pytest.raises(ValueError):
            check_patterns(bad)


def test_status_classification() -> None:
    assert classify(200) is classify(204) is Verdict.DELIVERED
    for status in (408, 429, 500, 503, 401, 403, 404, 301):
        assert classify(status) is Verdict.RETRY, status
    for status in (400, 410, 413, 415, 422):
        assert classify(status) is Verdict.REJECTED, status


# ---------------------------------------------------------------------------------------------- harness
class Receiver:
    """A CRM stand-in: verifies every request, answers per ``behaviour``, counts accepted ids once."""

    def __init__(self) -> None:
        self.behaviour: Behaviour = lambda _id, _n, _total: 200
        self.attempts: list[tuple[str, float, int]] = []
        self.accepted_by: dict[str, list[str]] = {"/hook": [], "/other": []}
        self.duplicates = 0
        self.bad: list[str] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        event_id = h.get("X-CTI-Event-Id", "")
        good = (verify_signature(SECRET, h.get("X-CTI-Timestamp", ""), body, h.get("X-CTI-Signature", ""),
                                 tolerance_s=60, now=time.time())
                and h.get("Content-Type") == "application/json" and json.loads(body)["id"] == event_id)
        if not good:
            self.bad.append(event_id)
            return web.Response(status=401)
        status = self.behaviour(event_id, sum(a[0] == event_id for a in self.attempts) + 1, len(self.attempts) + 1)
        self.attempts.append((event_id, time.monotonic(), status))
        accepted = self.accepted_by[request.path]
        if 200 <= status < 300:
            if event_id in accepted:
                self.duplicates += 1
            else:
                accepted.append(event_id)
        return web.Response(status=status)

    @property
    def accepted(self) -> list[str]:
        return self.accepted_by["/hook"]

    def times(self, event_id: str) -> list[float]:
        return [t for e, t, _ in self.attempts if e == event_id]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    app = web.Application()
    app.router.add_post("/hook", rec.handle)
    app.router.add_post("/other", rec.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    rec.url = f"http://127.0.0.1:{port}/hook"
    yield rec
    await runner.cleanup()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = await open_store(tmp_path / "cti.sqlite3")
    yield s
    await s.close()


def endpoint(name: str, url: str, **kw: Any) -> WebhookConfig:
    return WebhookConfig(name=name, url=url, secret=SECRET, **kw)


RETRY = WebhookRetryConfig(base_delay_s=0.1, max_delay_s=0.4)
_ids = EventIdFactory()


def event(n: int, type_: str = "agent.state_changed") -> Envelope:
    return Envelope(type=type_, id=_ids.new(time.time()), ts=time.time(), node="t", data={"n": n})


async def until(pred: Callable[[], bool], within: float = 8.0) -> None:
    """Poll a condition the code under test has no event for (test-only)."""
    async with asyncio.timeout(within):
        while True:
            if pred():
                return
            await asyncio.sleep(0.01)


async def running(dispatcher: WebhookDispatcher, body: Callable[[], Awaitable[None]]) -> None:
    """Run ``dispatcher`` in a named task around ``body``, then cancel it and surface its errors."""
    task = asyncio.create_task(dispatcher.run(), name="test-webhooks")
    try:
        async with asyncio.timeout(5):
            await dispatcher.started.wait()
        await body()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def dispatcher_for(bus: Bus, store: SqliteStore, endpoints: list[WebhookConfig]) -> WebhookDispatcher:
    return WebhookDispatcher(bus, store, endpoints, RETRY, rand=lambda: 1.0, poll_s=0.2)


# ---------------------------------------------------------------------------------------------- delivery
async def test_retries_with_growing_backoff_then_delivers_each_event_once_in_order(
        receiver: Receiver, store: SqliteStore) -> None:
    receiver.behaviour = lambda _id, _n, total: 503 if total <= 3 else 200
    bus = Bus()
    dispatcher = dispatcher_for(bus, store, [endpoint("crm", receiver.url)])
    events = [event(n) for n in range(6)]

    async def body() -> None:
        for e in events:
            bus.publish(e)
        await until(lambda: dispatcher.stats().delivered == len(events))  # acknowledged, and marked

    with capture_logs() as logs:
        await running(dispatcher, body)
    assert receiver.bad == []
    assert receiver.accepted == [e.id for e in events]  # publish order, each once
    assert receiver.duplicates == 0
    failures = [entry for entry in logs if entry["event"] == "webhook.delivery.failed"]
    assert [(f["retry_in_s"], f["error"]) for f in failures] == [
        (0.1, "HTTP 503"), (0.2, "HTTP 503"), (0.4, "HTTP 503")]  # rand=1: each step's ceiling
    first = receiver.times(events[0].id)
    assert len(first) == 4  # three 503s, then 200
    gaps = [b - a for a, b in zip(first, first[1:], strict=False)]
    assert all(gap >= expected - 0.02 for gap, expected in zip(gaps, (0.1, 0.2, 0.4), strict=True)), gaps
    assert {a[0] for a in receiver.attempts[:4]} == {events[0].id}  # nothing overtook the failing head
    stats = dispatcher.stats()
    assert (stats.recorded, stats.delivered, stats.failed, stats.dead) == (6, 6, 3, 0)
    entries = [await store.get_outbox_entry(OutboxId(i)) for i in range(1, 7)]
    assert [e.status if e else None for e in entries] == [OutboxStatus.DELIVERED] * 6


class BusyStore:
    """The real store, but its first ``busy`` transactions fail with StoreBusyError (a locked database)."""

    def __init__(self, store: SqliteStore, busy: int) -> None:
        self._store, self.busy = store, busy

    def transaction(self) -> Any:
        if self.busy:
            self.busy -= 1
            raise StoreBusyError("database is locked")
        return self._store.transaction()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_busy_store_is_retried_with_growing_delays_and_the_event_is_recorded_once(
        receiver: Receiver, store: SqliteStore) -> None:
    bus = Bus()
    busy = BusyStore(store, busy=3)
    dispatcher = WebhookDispatcher(bus, cast(SqliteStore, busy), [endpoint("crm", receiver.url)], RETRY,
                                   rand=lambda: 1.0, poll_s=0.2)
    e = event(1)

    async def body() -> None:
        bus.publish(e)
        await until(lambda: dispatcher.stats().delivered == 1)

    with capture_logs() as logs:
        await running(dispatcher, body)
    retries = [entry["retry_in"] for entry in logs if entry["event"] == "webhook.outbox.write_failed"]
    assert retries == [0.05, 0.1, 0.2] and busy.busy == 0
    assert receiver.accepted == [e.id] and dispatcher.stats().recorded == 1


async def test_dead_letter_after_max_attempts_unblocks_the_line_and_replay_sends_again(
        receiver: Receiver, store: SqliteStore) -> None:
    events = [event(0), event(1)]
    receiver.behaviour = lambda eid, _n, _t: 503 if eid == events[0].id else 200
    bus = Bus()
    dispatcher = dispatcher_for(bus, store, [endpoint("crm", receiver.url, max_attempts=3)])

    async def body() -> None:
        for e in events:
            bus.publish(e)
        await until(lambda: receiver.accepted == [events[1].id])
        dead = await store.list_dead_letters("crm")
        assert [(d.event_id, d.attempts, d.last_error) for d in dead] == [(events[0].id, 3, "HTTP 503")]
        assert len(receiver.times(events[0].id)) == 3
        # The second event waited until the first was dead.
        assert receiver.times(events[1].id)[0] > receiver.times(events[0].id)[-1]
        receiver.behaviour = lambda _id, _n, _t: 200
        await store.replay_dead_letter(dead[0].entry_id, time.time())
        dispatcher.wake("crm")
        await until(lambda: dispatcher.stats().delivered == 2)

    await running(dispatcher, body)
    assert receiver.accepted == [events[1].id, events[0].id] and receiver.duplicates == 0
    assert dispatcher.stats().dead == 1 and await store.list_dead_letters() == []


async def test_a_payload_rejected_with_400_is_dead_at_once(receiver: Receiver, store: SqliteStore) -> None:
    receiver.behaviour = lambda _id, _n, _t: 400
    bus = Bus()
    dispatcher = dispatcher_for(bus, store, [endpoint("crm", receiver.url, max_attempts=10)])

    async def body() -> None:
        bus.publish(event(0))
        await until(lambda: dispatcher.stats().dead == 1)

    await running(dispatcher, body)
    assert len(receiver.attempts) == 1
    assert [d.last_error for d in await store.list_dead_letters()] == ["HTTP 400 (rejected)"]


async def test_one_endpoint_down_does_not_hold_back_the_other(receiver: Receiver, store: SqliteStore) -> None:
    bus = Bus()
    down = endpoint("down", "http://127.0.0.1:9/hook", timeout_s=0.5, max_attempts=100)  # discard port: refused
    calls_only = endpoint("calls", receiver.url.replace("/hook", "/other"), events=("call.*",))
    dispatcher = dispatcher_for(bus, store, [down, endpoint("crm", receiver.url), calls_only])
    events = [event(n, "agent.state_changed" if n % 2 else "call.ended") for n in range(8)]

    async def body() -> None:
        for e in events:
            bus.publish(e)
        await until(lambda: dispatcher.stats().delivered == len(events) + 4)
        await until(lambda: dispatcher.stats().endpoints["down"].failed >= 2)

    await running(dispatcher, body)
    stats = dispatcher.stats().endpoints
    assert receiver.accepted == [e.id for e in events]  # crm got everything, in order
    assert stats["crm"].delivered == 8 and stats["calls"].delivered == 4 and stats["calls"].recorded == 4
    assert stats["down"].delivered == 0 and stats["down"].recorded == 8
    families = {f.name: dict((labels["endpoint"], v) for labels, v in f.samples)
                for f in webhook_metrics(dispatcher)()}
    assert families["cti_webhook_delivered_total"] == {"down": 0, "crm": 8, "calls": 4}
    assert families["cti_webhook_failed_total"]["down"] >= 2
    assert receiver.accepted_by["/other"] == [e.id for e in events if e.type == "call.ended"]
    assert receiver.duplicates == 0


async def test_an_entry_leased_by_a_dead_sender_is_claimed_again_after_the_lease(
        receiver: Receiver, store: SqliteStore) -> None:
    e = event(0)
    await store.enqueue(endpoint="crm", event_id=e.id, event_type=e.type, payload=e.to_dict(), created=time.time())
    [claimed] = await store.claim_due(time.time(), endpoint="crm", lease_s=0.6)  # a sender that then "died"
    leased_at = time.monotonic()
    dispatcher = dispatcher_for(Bus(), store, [endpoint("crm", receiver.url)])

    async def body() -> None:
        await until(lambda: dispatcher.stats().delivered == 1)

    await running(dispatcher, body)
    assert receiver.accepted == [e.id]
    assert receiver.times(e.id)[0] - leased_at >= 0.55
    entry = await store.get_outbox_entry(claimed.entry_id)
    assert entry is not None and entry.status is OutboxStatus.DELIVERED and entry.attempts == 2


# ---------------------------------------------------------------------------------------------- API and CLI
async def test_api_and_cli_list_and_replay_dead_letters(receiver: Receiver, store: SqliteStore) -> None:
    receiver.behaviour = lambda _id, _n, _t: 410
    bus = Bus()
    dispatcher = dispatcher_for(bus, store, [endpoint("crm", receiver.url)])
    # The real admin app (its guard middleware does the token check); no handler of its own is called here.
    control = cast(Any, SimpleNamespace(agents_snapshot=list))
    app = build_app(control, token=TOKEN, node="t", metrics=cast(Any, object()))
    add_webhook_routes(app, store=store, dispatcher=dispatcher)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    e = event(0)

    async def body() -> None:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            bus.publish(e)
            await until(lambda: dispatcher.stats().dead == 1)
            assert (await client.get("/api/v1/webhooks")).status == 401
            listed = await (await client.get("/api/v1/webhooks", headers=auth)).json()
            [crm] = listed["webhooks"]
            assert (crm["name"], crm["dead"], crm["since_start"]["recorded"]) == ("crm", 1, 1)
            dead = await (await client.get("/api/v1/webhooks/dead-letters", headers=auth)).json()
            [letter] = dead["dead_letters"]
            assert (letter["event_id"], letter["last_error"]) == (e.id, "HTTP 410 (rejected)")
            for path, status, code in (("999", 404, "dead_letter_not_found"), ("x1", 400, "bad_id")):
                resp = await client.post(f"/api/v1/webhooks/dead-letters/{path}/replay", headers=auth)
                assert (resp.status, (await resp.json())["error"]["code"]) == (status, code)
            url = str(client.make_url("")).rstrip("/")
            cli = await cli_run(["list", "--url", url, "--token", TOKEN])
            assert cli.exit_code == 0 and "crm" in cli.output and receiver.url in cli.output
            cli = await cli_run(["dead-letters", "--json", "--url", url, "--token", TOKEN])
            assert cli.exit_code == 0 and json.loads(cli.output)["dead_letters"][0]["event_id"] == e.id
            cli = await cli_run(["list", "--url", url, "--token", "wrong-token-wrong-token"])
            assert cli.exit_code == 1 and "refused the token" in cli.output
            receiver.behaviour = lambda _id, _n, _t: 200
            cli = await cli_run(["replay", str(letter["id"]), "--url", url, "--token", TOKEN])
            assert cli.exit_code == 0 and f"replayed {letter['id']}" in cli.output
            await until(lambda: receiver.accepted == [e.id])
            again = await client.post(f"/api/v1/webhooks/dead-letters/{letter['id']}/replay", headers=auth)
            assert (again.status, (await again.json())["error"]["code"]) == (409, "not_dead")

    await running(dispatcher, body)


async def test_cli_reports_an_unreachable_server() -> None:
    result = await cli_run(["list", "--url", "http://127.0.0.1:9", "--token", TOKEN])
    assert result.exit_code == 1 and "cannot reach the server" in result.output


async def cli_run(args: list[str]) -> Any:
    """The CLI runs its own event loop: run it in a thread while this loop serves the API."""
    return await asyncio.to_thread(CliRunner().invoke, webhooks, args)
