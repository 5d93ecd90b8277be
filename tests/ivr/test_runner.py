"""Adapter tests: the asyncio runner with a fake channel, and CRM look-ups against a real local HTTP server."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from config.errors import ConfigFileError
from ivr.catalog import FlowCatalog
from ivr.engine import Session
from ivr.events import (
    CallerHungUp,
    DigitReceived,
    EnqueueCall,
    LookupCompleted,
    LookupFailed,
    LookupId,
    RaiseAlert,
    RecordVoicemail,
    StartLookup,
    TagCall,
)
from ivr.record import InputRecord, Outcome
from ivr.runner import IvrRunner, fetch_lookup
from tests.ivr.helpers import flows

REPO = Path(__file__).resolve().parents[2]


class FakeChannel:
    """Implements :class:`ivr.runner.IvrChannel`; records calls. With ``hold`` set, play lasts until cancelled."""

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.calls: list[tuple[str, object]] = []
        self.started: asyncio.Queue[list[str]] = asyncio.Queue()
        self._release = asyncio.Event()
        self.cancelled_plays = 0
        self.inputs: list[InputRecord] = []  # the caller's answers, kept apart from the other calls
        self.recording = asyncio.Event()
        self._stop_recording = asyncio.Event()
        self.cancelled_recordings = 0

    def release(self) -> None:
        """Let the held prompt end normally."""
        self._release.set()

    async def play(self, files: Sequence[Path]) -> None:
        names = [f.name for f in files]
        self.calls.append(("play", names))
        self.started.put_nowait(names)
        try:
            if self.hold:
                await self._release.wait()
                self._release.clear()
        except asyncio.CancelledError:
            self.cancelled_plays += 1
            raise

    async def tag(self, command: TagCall) -> None:
        self.calls.append(("tag", command))

    async def raise_alert(self, command: RaiseAlert) -> None:
        self.calls.append(("alert", command))

    async def enqueue(self, command: EnqueueCall) -> None:
        self.calls.append(("enqueue", command))

    async def record_voicemail(self, command: RecordVoicemail) -> float:
        """Records until stop_voicemail; a cancellation (hang-up) is counted."""
        self.calls.append(("voicemail", command.mailbox))
        self.recording.set()
        try:
            await self._stop_recording.wait()
        except asyncio.CancelledError:
            self.cancelled_recordings += 1
            raise
        return 4.5

    async def input_taken(self, record: InputRecord) -> None:
        self.inputs.append(record)

    async def stop_voicemail(self) -> None:
        self.calls.append(("stop_voicemail", None))
        self._stop_recording.set()

    async def hangup(self) -> None:
        self.calls.append(("hangup", None))

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.calls]


STOP = web.AppKey("stop", asyncio.Event)
CUSTOMERS = {"5550001": {"customer": {"name": "Ada", "tier": "gold"}, "tickets": {"open": 2}}}


async def customer(request: web.Request) -> web.Response:
    number = request.match_info["number"]
    if number == "slow":  # answers only when the test ends: the adapter's timeout is under test
        await request.app[STOP].wait()
    if number == "boom":
        return web.Response(status=500, text="internal error")
    if number == "garbage":
        return web.Response(text="<html>not json</html>", content_type="text/html")
    if number == "list":
        return web.json_response([1, 2, 3])
    if number == "huge":
        return web.json_response({"blob": "x" * 100_000})
    if number not in CUSTOMERS:
        return web.json_response({}, status=404)
    assert request.query.get("source") == "ivr"
    return web.json_response(CUSTOMERS[number])


@pytest.fixture
async def crm() -> AsyncIterator[str]:
    app = web.Application()
    app[STOP] = asyncio.Event()
    app.router.add_get("/customers/{number}", customer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        app[STOP].set()
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def lookup(url: str, timeout: float = 1.0) -> StartLookup:
    return StartLookup(lookup_id=LookupId(1), url=url, params={"source": "ivr"}, timeout=timeout)


async def test_fetch_lookup_returns_the_json_object(crm: str, http: aiohttp.ClientSession) -> None:
    result = await fetch_lookup(http, lookup(f"{crm}/customers/5550001"))
    assert result == LookupCompleted(lookup_id=LookupId(1), result=CUSTOMERS["5550001"])


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("slow", "timeout"),
        ("boom", "http status 500"),
        ("unknown", "http status 404"),
        ("garbage", "response is not JSON"),
        ("list", "response is not a JSON object"),
        ("huge", "response too large"),
    ],
)
async def test_fetch_lookup_failures(crm: str, http: aiohttp.ClientSession, number: str, reason: str) -> None:
    result = await fetch_lookup(http, lookup(f"{crm}/customers/{number}", timeout=0.3))
    assert result == LookupFailed(lookup_id=LookupId(1), reason=reason)


async def test_fetch_lookup_connection_refused(http: aiohttp.ClientSession) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    result = await fetch_lookup(http, lookup(f"http://127.0.0.1:{port}/customers/1"))
    assert isinstance(result, LookupFailed) and result.reason.startswith("http error: ")


CRM_FLOW = """
flows:
  main:
    start: crm
    nodes:
      crm:
        type: lookup
        url: "{base}/customers/{{caller}}"
        params: {{source: ivr}}
        timeout: 0.3
        result:
          name: customer.name
          open_tickets: {{path: tickets.open, type: int}}
        next: route
        on_error: fallback
      route:
        type: branch
        cases: [{{when: {{var: open_tickets, op: gt, value: 0}}, goto: support}}]
        default: sales
      support: {{type: queue, queue: support}}
      sales: {{type: queue, queue: sales}}
      fallback: {{type: queue, queue: sales, priority: 1}}
"""


@pytest.mark.parametrize(("caller", "queue", "priority"), [("5550001", "support", 0), ("slow", "sales", 1),
                                                           ("boom", "sales", 1)])
async def test_runner_crm_result_and_fallbacks(
    crm: str, http: aiohttp.ClientSession, tmp_path: Path, caller: str, queue: str, priority: int
) -> None:
    session = Session(flows(CRM_FLOW.format(base=crm)), "main", caller=caller)
    channel = FakeChannel()
    record = await IvrRunner(session, channel, prompt_dir=tmp_path, http=http, call_id="c1").run()
    kind, command = channel.calls[-1]
    assert kind == "enqueue" and isinstance(command, EnqueueCall)
    assert (command.queue, command.priority) == (queue, priority)
    assert record.outcome is Outcome.QUEUED and len(record.lookups) == 1
    if caller == "5550001":
        assert command.variables["name"] == "Ada" and record.lookups[0].ok


async def test_runner_runs_the_demo_for_a_vip(http: aiohttp.ClientSession) -> None:
    catalog = FlowCatalog(REPO / "config/flows", REPO / "config/prompts")
    catalog.load()
    channel = FakeChannel(hold=True)
    runner = IvrRunner(catalog.new_session("main", caller="1000"), channel, prompt_dir=REPO / "config/prompts",
                       http=http, call_id="c2")
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        task = tg.create_task(runner.run(), name="ivr-test-run")
        assert await channel.started.get() == ["welcome.wav"]
        runner.deliver(DigitReceived(digit="2"))  # pressed during the greeting: the menu hears it (type-ahead)
        channel.release()
    record = task.result()
    assert channel.kinds()[:3] == ["tag", "alert", "play"] and channel.kinds()[-1] == "enqueue"
    enqueue = channel.calls[-1][1]
    assert isinstance(enqueue, EnqueueCall) and (enqueue.queue, enqueue.priority, enqueue.vip) == ("support", 10, True)
    assert record.tags.vip and [i.digits for i in record.inputs] == ["2"]


async def test_runner_barge_in_during_menu(http: aiohttp.ClientSession, prompt_dir: Path) -> None:
    fs = flows("""
    flows:
      main:
        start: m
        nodes:
          m:
            type: menu
            prompts: [menu]
            options: {"1": q}
            on_failure: q
          q: {type: queue, queue: sales}
    """, prompt_dir=prompt_dir)
    channel = FakeChannel(hold=True)
    runner = IvrRunner(Session(fs, "main", caller="1"), channel, prompt_dir=prompt_dir, http=http)
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        task = tg.create_task(runner.run(), name="ivr-test-run")
        await channel.started.get()
        runner.deliver(DigitReceived(digit="1"))
    record = task.result()
    assert channel.cancelled_plays == 1
    assert channel.kinds() == ["play", "enqueue"] and record.outcome is Outcome.QUEUED


async def test_runner_no_input_timeout_then_failure_path(http: aiohttp.ClientSession, prompt_dir: Path) -> None:
    fs = flows("""
    flows:
      main:
        start: m
        nodes:
          m: {type: menu, prompts: [menu], options: {"1": q}, timeout: 0.5, retries: 1, on_failure: bye}
          q: {type: queue, queue: sales}
          bye: {type: hangup, prompts: [bye]}
    """, prompt_dir=prompt_dir)
    channel = FakeChannel()
    async with asyncio.timeout(5):
        record = await IvrRunner(Session(fs, "main", caller="1"), channel, prompt_dir=prompt_dir, http=http).run()
    assert channel.calls == [("play", ["menu.wav"]), ("play", ["menu.wav"]), ("play", ["bye.wav"]), ("hangup", None)]
    assert record.outcome is Outcome.HUNG_UP
    assert channel.inputs == list(record.inputs) and len(channel.inputs) == 2  # both timeouts reached the channel


async def test_caller_hang_up_stops_playback_without_hanging_up_again(
    http: aiohttp.ClientSession, prompt_dir: Path
) -> None:
    fs = flows("""
    flows:
      main:
        start: hi
        nodes:
          hi: {type: play, prompts: [hello], next: bye}
          bye: {type: hangup}
    """, prompt_dir=prompt_dir)
    channel = FakeChannel(hold=True)
    runner = IvrRunner(Session(fs, "main", caller="1"), channel, prompt_dir=prompt_dir, http=http)
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        task = tg.create_task(runner.run(), name="ivr-test-run")
        await channel.started.get()
        runner.deliver(CallerHungUp())
    assert task.result().outcome is Outcome.CALLER_HUNG_UP
    assert channel.kinds() == ["play"] and channel.cancelled_plays == 1


MAIN_V1 = """
flows:
  main:
    start: q
    nodes:
      q: {type: queue, queue: QUEUE}
"""


VOICEMAIL_FLOW = """
flows:
  main:
    start: vm
    nodes:
      vm: {type: voicemail, mailbox: sales, max_seconds: 30, next: bye}
      bye: {type: hangup}
"""


async def test_runner_voicemail_pound_stops_the_recording_then_the_flow_goes_on(http: aiohttp.ClientSession,
                                                                                tmp_path: Path) -> None:
    channel = FakeChannel()
    runner = IvrRunner(Session(flows(VOICEMAIL_FLOW), "main", caller="1"), channel, prompt_dir=tmp_path, http=http)
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        task = tg.create_task(runner.run(), name="ivr-test-run")
        await channel.recording.wait()
        runner.deliver(DigitReceived(digit="5"))  # not the stop key
        runner.deliver(DigitReceived(digit="#"))
    assert channel.kinds() == ["voicemail", "stop_voicemail", "hangup"]
    assert task.result().outcome is Outcome.HUNG_UP and channel.cancelled_recordings == 0


async def test_runner_voicemail_hang_up_cancels_the_recording_task(http: aiohttp.ClientSession,
                                                                  tmp_path: Path) -> None:
    channel = FakeChannel()
    runner = IvrRunner(Session(flows(VOICEMAIL_FLOW), "main", caller="1"), channel, prompt_dir=tmp_path, http=http)
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        task = tg.create_task(runner.run(), name="ivr-test-run")
        await channel.recording.wait()
        runner.deliver(CallerHungUp())
    assert channel.kinds() == ["voicemail"] and channel.cancelled_recordings == 1  # the call keeps the message
    assert task.result().outcome is Outcome.VOICEMAIL


async def test_hot_reload_keeps_calls_on_their_version(tmp_path: Path, prompt_dir: Path) -> None:
    folder = tmp_path / "flows"
    folder.mkdir()
    (folder / "main.yaml").write_text(MAIN_V1.replace("QUEUE", "sales"))
    catalog = FlowCatalog(folder, prompt_dir)
    catalog.load()
    old_call = catalog.new_session("main", caller="1")
    (folder / "main.yaml").write_text(MAIN_V1.replace("QUEUE", "support"))
    assert (await catalog.reload()).version == 2
    new_call = catalog.new_session("main", caller="2")
    (folder / "main.yaml").write_text(textwrap.dedent("""
        flows:
          main: {start: nowhere, nodes: {}}
    """))
    with pytest.raises(ConfigFileError):
        await catalog.reload()
    assert catalog.current.version == 2  # the bad version never went live
    old_out, new_out = old_call.start(0.0), new_call.start(0.0)
    assert isinstance(old_out[0], EnqueueCall) and old_out[0].queue == "sales"
    assert isinstance(new_out[0], EnqueueCall) and new_out[0].queue == "support"
    assert (old_call.record.flow_version, new_call.record.flow_version) == (1, 2)


def test_catalog_must_be_loaded_first(tmp_path: Path) -> None:
    from ivr.errors import LocalIvrError

    with pytest.raises(LocalIvrError):
        FlowCatalog(tmp_path, tmp_path).new_session("main", caller="1")
