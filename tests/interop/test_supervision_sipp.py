"""Supervision with real peers: SIPp as the carrier, the agent's and the supervisor's softphones.

The server runs in the test's event loop (the demo config on free ports) so that the test drives the
supervision through :class:`cti.floor.control.Control` — the interface the WebSocket commands call. SIPp does
the signalling of the three parties; their SDP puts each party's MEDIA at a UDP socket of the test
(:class:`Phone`), which plays that party's tone (caller 400 Hz, agent 1 kHz, supervisor 1.8 kHz, PCMU,
symmetric RTP from the same socket) and records what the party RECEIVES. The caller's phone also presses 2
in the IVR (RFC 4733). The verdicts are spectral (Goertzel amplitude of each party's tone in what a party
received during a window), never taken from events. Each test is bounded (< 60 s).
"""

from __future__ import annotations

import asyncio
import audioop
import contextlib
import math
import os
import random
import sqlite3
import time
import wave
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from acd import CallId
from config.loader import demo_config_path, load_config
from cti.app import Overrides, Server
from cti.call.shell import Call, CallPhase
from cti.call.supervision import SupervisionPhase
from sip.media import sine_tone
from sip.rtp import RtpPacket, g711
from sip.rtp.dtmf import digit_frames
from tests.support.procs import EVENT_CONTRACT_ENV, free_port
from tests.support.sipp import HOST, Sipp, SippRunner, sipp_ready

pytestmark = [
    pytest.mark.interop,
    pytest.mark.timeout(90),
    pytest.mark.skipif(not sipp_ready(), reason="sipp (Debian sip-tester) is not installed"),
]

TONES = {"caller": 400.0, "agent": 1000.0, "supervisor": 1800.0}
PRESENT, ABSENT = 0.05, 0.01  # Goertzel amplitude, fraction of full scale (each tone is sent at 0.2)


def level(pcm: bytes, freq: float) -> float:
    """Mean Goertzel amplitude of ``freq`` over 20 ms blocks: insensitive to phase jumps between frames
    (the recorder places plainly-bridged frames by arrival time, a few samples off each other)."""
    blocks = [pcm[i:i + 320] for i in range(0, len(pcm) - 319, 320)]
    return sum(goertzel(b, freq) for b in blocks) / len(blocks) if blocks else 0.0


def goertzel(pcm: bytes, freq: float) -> float:
    """Amplitude (fraction of full scale) of ``freq`` in 8 kHz 16-bit PCM."""
    samples = array("h", pcm)
    if not samples:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * freq / 8000)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return 2 * math.sqrt(max(s1 * s1 + s2 * s2 - coeff * s1 * s2, 0.0)) / len(samples) / 32768


class Phone(asyncio.DatagramProtocol):
    """One party's media: plays its tone every 20 ms to whoever sent it RTP, records what it receives."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tone = sine_tone(TONES[name], 1.0, 0.2)
        self.received: list[tuple[float, bytes]] = []  # (loop time, PCM)
        self.peer: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0
        self.seq = random.randrange(0x10000)
        self.ts = random.randrange(0x100000000)
        self.ssrc = random.randrange(1, 0xFFFFFFFF)
        self.sent = 0
        self.silent = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.port = int(transport.get_extra_info("sockname")[1])

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            packet = RtpPacket.parse(data)
        except Exception:
            return  # RTCP and the like
        self.peer = self.peer or addr
        if packet.payload_type == 0:
            self.received.append((asyncio.get_running_loop().time(), g711.decode_ulaw(packet.payload)))

    def _send(self, pt: int, payload: bytes, ts: int, marker: bool = False) -> None:
        if self.transport is None or self.peer is None:
            return
        self.seq = (self.seq + 1) & 0xFFFF
        packet = RtpPacket(payload_type=pt, sequence_number=self.seq, timestamp=ts & 0xFFFFFFFF, ssrc=self.ssrc,
                           payload=payload, marker=marker)
        self.transport.sendto(packet.serialize(), self.peer)

    async def play(self) -> None:
        """Send the tone every 20 ms (anchored schedule) once the server's RTP has shown where to."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        k = 0
        while True:
            k += 1
            await asyncio.sleep(max(0.0, start + k * 0.02 - loop.time()))
            self.ts += 160
            if self.silent:
                continue
            offset = (self.sent % 50) * 320
            self._send(0, g711.encode_ulaw(self.tone[offset:offset + 320]), self.ts)
            self.sent += 1

    async def press(self, digit: str) -> None:
        """One RFC 4733 key press (PT 101) with the audio paused meanwhile."""
        self.silent = True
        ts = self.ts
        elapsed = 0.0
        for frame in digit_frames(digit, duration=0.1):
            await asyncio.sleep(max(0.0, frame.offset - elapsed))
            elapsed = frame.offset
            self._send(101, frame.payload, ts, frame.marker)
        self.silent = False

    def window(self, start: float, end: float) -> dict[str, float]:
        pcm = b"".join(p for t, p in self.received if start <= t < end)
        return {who: round(goertzel(pcm, f), 4) for who, f in TONES.items()}

    def max_gap(self, start: float, end: float) -> float:
        times = [t for t, _ in self.received if start <= t < end]
        return max((b - a for a, b in zip(times, times[1:], strict=False)), default=math.inf)


@contextlib.asynccontextmanager
async def phones() -> AsyncIterator[dict[str, Phone]]:
    loop = asyncio.get_running_loop()
    out: dict[str, Phone] = {}
    tasks: list[asyncio.Task[None]] = []
    async with asyncio.TaskGroup() as tg:
        for name in TONES:
            _, protocol = await loop.create_datagram_endpoint(lambda n=name: Phone(n),  # type: ignore[misc]
                                                              local_addr=(HOST, 0))
            out[name] = protocol
            tasks.append(tg.create_task(protocol.play(), name=f"phone-{name}"))
        try:
            yield out
        finally:
            for task in tasks:
                task.cancel()
            for phone in out.values():
                if phone.transport is not None:
                    phone.transport.close()


class _Stop(Exception):
    pass


@contextlib.asynccontextmanager
async def demo_server(tmp: Path) -> AsyncIterator[Server]:
    """``cti serve --demo`` in this loop, on free ports, data under ``tmp``."""
    with mock.patch.dict(os.environ, {EVENT_CONTRACT_ENV: "1"}):  # every event checked against its schema
        server = Server(load_config(demo_config_path()),
                        Overrides(sip_port=free_port(), http_port=free_port("tcp"), data_dir=str(tmp / "var")))
    try:
        async with asyncio.TaskGroup() as tg:
            await server.start(tg)
            failed = True
            try:
                yield server
                failed = False
            finally:
                await server.stop(grace=2)
            if not failed:
                assert server.bus.stats().invalid == 0, "an event broke its schema: see bus.event.invalid in the log"
                raise _Stop  # ends the server's tasks (a failure ends them by propagating)
    except* _Stop:
        pass



async def until(predicate: Any, within: float, what: str) -> None:
    """Poll ``predicate`` (state of other processes: SIPp registrations, answers) every 50 ms, ``within`` s."""
    for _ in range(round(within / 0.05)):
        if predicate():
            return
        await asyncio.sleep(0.05)
    assert predicate(), what


async def sipp_ok(sipp: Sipp, within: float) -> None:
    assert await asyncio.to_thread(sipp.wait, within) == 0, sipp.report()


async def connected_call(server: Server, sipps: SippRunner, ph: dict[str, Phone], talk_ms: int) -> tuple[Call, Sipp,
                                                                                                        Sipp, Sipp]:
    """Register 1003 and sup1, log 1003 in, call 100, press 2: the call connected to 1003."""
    assert server.controller is not None
    target = f"{HOST}:{server.config.sip.port}"
    keys = ("-key", "rtp_ip", HOST, "-key", "rtp_port")
    agent = sipps.start("agent", "agent_register_answer.xml", "-s", "1003", "-au", "1003", "-ap", "demo1003",
                        *keys, str(ph["agent"].port), remote=target, ooc="supervisor_answer.xml", timeout=60)
    sup = sipps.start("supervisor", "agent_register_answer.xml", "-s", "sup1", "-au", "sup1", "-ap", "demosup1",
                      *keys, str(ph["supervisor"].port), remote=target, ooc="supervisor_answer.xml", timeout=60)
    registration = server.controller.registration
    await until(lambda: registration.lookup("1003") and registration.lookup("sup1"), 10, "phones registered")
    server.control.login("1003", ready=True)
    carrier = sipps.start("carrier", "supervisor_carrier.xml", "-s", "100", "-key", "caller", "5551234", *keys,
                          str(ph["caller"].port), "-set", "talk_ms", str(talk_ms), remote=target, timeout=60)
    await until(lambda: ph["caller"].received, 10, "the greeting reaches the caller")
    await asyncio.sleep(3.0)  # the demo greeting lasts 2.4 s; a digit during it is not heard
    await ph["caller"].press("2")
    calls = server.controller.calls
    await until(lambda: any(c.phase is CallPhase.CONNECTED for c in calls.values()), 10, "agent answered")
    call = next(iter(calls.values()))
    return call, carrier, agent, sup


WINDOWS: dict[str, tuple[float, float]] = {}


async def measure(ph: dict[str, Phone], seconds: float, settle: float = 0.4, name: str = "") -> dict[str, dict[str,
                                                                                                          float]]:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(settle)
    start = loop.time()
    await asyncio.sleep(seconds)
    WINDOWS[name] = (start, loop.time())
    return {name: phone.window(start, loop.time()) for name, phone in ph.items()}


def recording_levels(path: str, recording: Any) -> dict[str, dict[str, dict[str, float]]]:
    """Tone amplitudes per channel of the call's WAV in each measured window (positions from loop times)."""
    with wave.open(path) as wav:
        frames = wav.readframes(wav.getnframes())
    out: dict[str, dict[str, dict[str, float]]] = {}
    for phase, (start, end) in WINDOWS.items():
        a, b = recording.position(start) * 4, recording.position(end - 0.3) * 4  # 0.3 s: the recorder's lag
        chunk = frames[a:b]
        out[phase] = {side: {who: round(level(audioop.tomono(chunk, 2, *gains), f), 4) for who, f in TONES.items()}
                      for side, gains in (("left", (1, 0)), ("right", (0, 1)))}
    return out


def hears(levels: dict[str, float], *who: str) -> bool:
    """``who`` present and every other party's tone absent (a party never gets its own tone back)."""
    return all(levels[w] > PRESENT for w in who) and all(levels[o] < ABSENT for o in TONES if o not in who)


async def test_monitor_whisper_barge_then_end_back_to_the_bridge(tmp_path: Path, sipps: SippRunner) -> None:
    async with demo_server(tmp_path) as server, phones() as ph:
        call, carrier, agent, sup = await connected_call(server, sipps, ph, talk_ms=22000)
        await until(lambda: call.media.recording is not None, 5, "the call is recorded")
        recording = call.media.recording
        WINDOWS.clear()
        report: dict[str, Any] = {"bridge": await measure(ph, 1.5, name="bridge")}
        assert hears(report["bridge"]["caller"], "agent") and hears(report["bridge"]["agent"], "caller"), report

        server.control.supervise("sup1", call.id, "monitor")
        await until(lambda: call.supervision is not None and call.supervision.phase is SupervisionPhase.ACTIVE,
                    10, "the supervisor's phone answered")
        report["monitor"] = await measure(ph, 2.0, name="monitor")
        for mode in ("whisper", "barge"):
            server.control.supervise("sup1", call.id, mode)  # same leg, no re-dial
            report[mode] = await measure(ph, 2.0, name=mode)
        server.control.end_supervision("sup1", call.id)
        report["ended"] = await measure(ph, 1.5, name="ended")
        print("tone amplitudes per listener per phase:", report)  # noqa: T201  (the measured evidence)

        r = report
        assert hears(r["monitor"]["supervisor"], "caller", "agent"), r
        assert hears(r["monitor"]["caller"], "agent") and hears(r["monitor"]["agent"], "caller"), r
        assert hears(r["whisper"]["agent"], "caller", "supervisor") and hears(r["whisper"]["caller"], "agent"), r
        assert hears(r["whisper"]["supervisor"], "caller", "agent"), r
        assert hears(r["barge"]["agent"], "caller", "supervisor"), r
        assert hears(r["barge"]["caller"], "agent", "supervisor"), r
        assert hears(r["ended"]["caller"], "agent") and hears(r["ended"]["agent"], "caller"), r
        await sipp_ok(sup, 10)  # it got the BYE of end_supervision
        assert "BYE sip:" in sup.messages() and len(sup.messages().split("INVITE sip:")) == 2  # one dial only
        await sipp_ok(carrier, 30)
        await sipp_ok(agent, 10)
        await asyncio.sleep(0.5)  # the CDR writer
        path = (await asyncio.to_thread(_cdr, server))["recording_path"]
        rec = recording_levels(path, recording)
        print("recording (left = caller, right = agent side):", rec)  # noqa: T201
        for phase in ("monitor", "whisper"):  # recorded on the mixer's 20 ms grid: clean
            assert hears(rec[phase]["left"], "caller") and hears(rec[phase]["right"], "agent"), (phase, rec)
        for phase in ("bridge", "ended"):  # the plain bridge records by arrival time (phase jumps): looser
            assert rec[phase]["left"]["caller"] > PRESENT and rec[phase]["right"]["agent"] > ABSENT, (phase, rec)
            assert max(rec[phase]["left"]["supervisor"], rec[phase]["right"]["supervisor"]) < ABSENT, (phase, rec)
        assert hears(rec["barge"]["left"], "caller") and hears(rec["barge"]["right"], "agent", "supervisor"), rec


async def test_take_over_replaces_the_agent_and_the_caller_stays(tmp_path: Path, sipps: SippRunner) -> None:
    async with demo_server(tmp_path) as server, phones() as ph:
        call, carrier, agent, sup = await connected_call(server, sipps, ph, talk_ms=12000)
        server.control.supervise("sup1", call.id, "barge")
        await until(lambda: call.supervision is not None and call.supervision.phase is SupervisionPhase.ACTIVE,
                    10, "the supervisor's phone answered")
        before = await measure(ph, 1.0)
        loop = asyncio.get_running_loop()
        switched_at = loop.time()
        server.control.take_over("sup1", call.id)
        after = await measure(ph, 2.0, settle=0.3)
        gap = ph["caller"].max_gap(switched_at - 0.5, switched_at + 1.0)
        state = server.control.agent_snapshot("1003")["state"]
        print("take-over:", {"before": before, "after": after, "caller_max_gap_s": round(gap, 3),  # noqa: T201
                             "agent_state": state})
        assert hears(before["caller"], "agent", "supervisor"), before
        assert hears(after["caller"], "supervisor") and hears(after["supervisor"], "caller"), after
        assert gap < 0.1, gap  # the caller's audio never stopped for longer than a few packets
        assert state == "wrap_up"
        assert call.phase is CallPhase.CONNECTED and call.detail.agent == "sup1"
        await sipp_ok(agent, 10)  # the agent's phone got its BYE; the caller stayed
        await sipp_ok(carrier, 30)  # the caller hangs up
        await sipp_ok(sup, 10)  # ... and the supervisor (now the agent) gets the BYE
        assert server.controller is not None and CallId(call.id) not in server.controller.calls
        await asyncio.sleep(0.5)  # the CDR writer
        cdr = await asyncio.to_thread(_cdr, server)
        assert (cdr["final_agent"], cdr["hangup_by"], cdr["end_reason"]) == ("sup1", "caller", "caller-hangup"), cdr


def _cdr(server: Server) -> dict[str, Any]:
    deadline = time.monotonic() + 5
    while True:
        with contextlib.closing(sqlite3.connect(Path(server.config.data_dir) / "cti.sqlite3")) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM calls").fetchall()
            paths = db.execute("SELECT path FROM recordings").fetchall()
        if (rows and paths) or time.monotonic() > deadline:
            assert len(rows) == 1 and len(paths) == 1, (rows, paths)
            return {**dict(rows[0]), "recording_path": paths[0]["path"]}
        time.sleep(0.1)
