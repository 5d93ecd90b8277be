"""The asyncio adapters of the media package: the UDP relay, the prompt cache and the recording.

Importing ``sip.media`` does not import this module; import it explicitly.

:class:`PromptCache`: ``await cache.load(path)`` runs ``stat`` and :func:`sip.media.prompts.load_wav`
in a worker thread (``asyncio.to_thread``) and keeps a small LRU of decoded prompts keyed by
``(path, mtime_ns, size)`` (the path as given: pass absolute paths), so an edited prompt is reloaded
and concurrent loads of the same file share one read.

:class:`Recording`: on the loop it only appends to a list (``push_pcm``/``push_tap``);
:meth:`Recording.flush` hands the batch to a worker thread which decodes G.711, assembles
(:class:`sip.media.recorder.StereoAssembler`), interleaves and writes. Flushes are serialised by a
lock, so the thread-side state is never touched concurrently.

:class:`UdpRelay`: two UDP legs joined by a :class:`sip.media.relay.Relay`.

:class:`EndpointRelay` is the call's fast path: it puts two RTP endpoints of
``sip.rtp.aio`` (which own the sockets, the RTCP and the RTP timeout) in relay mode, so
their datagrams go to the relay raw, with no RTP session, jitter buffer or decoding on the
way, and gives the streams back to the endpoints' sessions when it stops.

:class:`UdpRelay` owns two datagram endpoints (``loop.create_datagram_endpoint``) or
adopts transports created elsewhere. Per datagram it calls ``Relay.forward`` and
``sendto`` on the other leg's transport: nothing else runs on the hot path (``now`` is
``loop.time()``; events are moved to :attr:`UdpRelay.events` only when there are some).

Remote addresses come from each leg's SDP (``c=``/``m=`` lines); with ``latch=True`` a
leg's remote address is learned from, and follows, the source of the packets it sends
(symmetric RTP, for peers behind NAT), reported as :class:`PeerLatched`.

Plugging into ``sip/rtp/aio.py`` later: the relay needs from an RTP endpoint only
(1) the raw datagrams it receives, handed to :meth:`UdpRelay.datagram_received`, and
(2) something with ``sendto(data, addr)`` (:class:`DatagramSender`) to send on. An
endpoint that switches from "terminate media" (player, IVR) to "relay" mode forwards its
raw datagrams here instead of to its session core, and back when the relay is closed.
"""

from __future__ import annotations

import asyncio
import os
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from sip.media.events import LegSide, MediaEvent, PeerLatched, RecordingSerial
from sip.media.frames import SAMPLE_RATE
from sip.media.player import Prompt
from sip.media.prompts import CacheKey, stat_and_load
from sip.media.recfiles import RecordingInfo, WavPartWriter
from sip.media.recorder import MAX_PENDING, Channel, LegTimeline, StereoAssembler, TapFrame, TapSource
from sip.media.relay import DtmfMode, LegConfig, Relay
from sip.rtp.aio import RtpEndpoint
from sip.rtp.g711 import decode

log = structlog.get_logger(__name__)

Addr = tuple[str, int]


class DatagramSender(Protocol):
    """The part of ``asyncio.DatagramTransport`` the relay uses."""

    def sendto(self, data: bytes | bytearray, addr: Any = None, /) -> None:
        """Send one datagram."""
        ...


class _LegProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpRelay, side: LegSide) -> None:
        self._owner = owner
        self._side = side

    def datagram_received(self, data: bytes, addr: Addr) -> None:
        self._owner.datagram_received(self._side, data, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("media.relay.send_failed", side=self._side.value, error=str(exc))


class UdpRelay:
    """A :class:`Relay` between two UDP legs. Create with :meth:`open` or :meth:`adopt`."""

    def __init__(self, relay: Relay, *, latch: bool = True) -> None:
        self.relay = relay
        self._latch = latch
        self._loop = asyncio.get_running_loop()
        self._transports: dict[LegSide, DatagramSender] = {}
        self._owned: list[asyncio.DatagramTransport] = []
        self._remote: dict[LegSide, Addr | None] = {LegSide.A: None, LegSide.B: None}
        self.events: asyncio.Queue[MediaEvent] = asyncio.Queue()

    @classmethod
    async def open(
        cls,
        relay: Relay,
        *,
        local_a: Addr,
        local_b: Addr,
        remote_a: Addr | None = None,
        remote_b: Addr | None = None,
        latch: bool = True,
    ) -> UdpRelay:
        """Bind one UDP socket per leg (port 0 picks a free port) and start relaying.

        Raises:
            OSError: a socket cannot be bound.
        """
        self = cls(relay, latch=latch)
        try:
            for side, local, remote in ((LegSide.A, local_a, remote_a), (LegSide.B, local_b, remote_b)):
                transport, _protocol = await self._loop.create_datagram_endpoint(
                    lambda side=side: _LegProtocol(self, side),  # type: ignore[misc]
                    local_addr=local,
                )
                self._owned.append(transport)
                self._transports[side] = transport
                self._remote[side] = remote
        except BaseException:
            self.close()
            raise
        return self

    @classmethod
    def adopt(
        cls,
        relay: Relay,
        *,
        sender_a: DatagramSender,
        sender_b: DatagramSender,
        remote_a: Addr | None = None,
        remote_b: Addr | None = None,
        latch: bool = True,
    ) -> UdpRelay:
        """Relay over transports owned elsewhere; their receive path must call :meth:`datagram_received`."""
        self = cls(relay, latch=latch)
        self._transports = {LegSide.A: sender_a, LegSide.B: sender_b}
        self._remote = {LegSide.A: remote_a, LegSide.B: remote_b}
        return self

    def local_addr(self, side: LegSide) -> Addr:
        """The bound address of an owned leg (for the SDP we send on that leg).

        Raises:
            KeyError: the leg's transport was adopted, not opened here.
        """
        index = 0 if side is LegSide.A else 1
        if index >= len(self._owned):
            raise KeyError(side)
        addr: Addr = self._owned[index].get_extra_info("sockname")[:2]
        return addr

    def remote_addr(self, side: LegSide) -> Addr | None:
        """Where packets for leg ``side`` are sent (``None`` until known)."""
        return self._remote[side]

    def datagram_received(self, side: LegSide, data: bytes, addr: Addr) -> None:
        """Hot path: one datagram received on leg ``side`` from ``addr``."""
        now = self._loop.time()
        if self._latch and self._remote[side] != addr:
            self._remote[side] = addr
            self.events.put_nowait(PeerLatched(at=now, side=side, addr=addr))
        out = self.relay.forward(side, data, now)
        if out is not None:
            other = LegSide.B if side is LegSide.A else LegSide.A
            dest = self._remote[other]
            if dest is not None:
                self._transports[other].sendto(out, dest)
        if self.relay.has_events:
            while (event := self.relay.next_event()) is not None:
                self.events.put_nowait(event)

    def close(self) -> None:
        """Close the transports this relay opened (adopted ones are left to their owner)."""
        for transport in self._owned:
            transport.close()
        self._owned.clear()


class PromptCache:
    """An LRU of decoded prompts keyed by path + mtime + size; all file work runs in threads."""

    def __init__(self, *, max_entries: int = 64, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[CacheKey, Prompt]] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[str, asyncio.Future[Prompt]] = {}
        self.loads = 0
        """Number of files actually decoded (cache misses), for tests and metrics."""

    def __len__(self) -> int:
        return len(self._entries)

    async def load(self, path: str | os.PathLike[str]) -> Prompt:
        """Return the prompt at ``path``, reading and decoding it in a worker thread if needed.

        The file is ``stat``-ed (in the thread) on every call, so an edited file is reloaded.

        Raises:
            PromptLoadError: the file cannot be read or decoded.
        """
        key_path = os.fspath(path)
        pending = self._inflight.get(key_path)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Prompt] = asyncio.get_running_loop().create_future()
        self._inflight[key_path] = future
        try:
            prompt = await self._load(key_path)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark it retrieved: waiters re-raise it, nobody else must
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(prompt)
            return prompt
        finally:
            del self._inflight[key_path]

    async def _load(self, key_path: str) -> Prompt:
        entry = self._entries.get(key_path)
        key, pcm = await asyncio.to_thread(stat_and_load, key_path, entry[0] if entry else None)
        if pcm is None and entry is not None:
            self._entries.move_to_end(key_path)
            return entry[1]
        assert pcm is not None
        self.loads += 1
        prompt = Prompt(name=Path(key_path).name, pcm=pcm)
        self._store(key_path, key, prompt)
        log.debug("media.prompt.loaded", path=key_path, bytes=len(pcm))
        return prompt

    def _store(self, key_path: str, key: CacheKey, prompt: Prompt) -> None:
        old = self._entries.pop(key_path, None)
        if old is not None:
            self._bytes -= len(old[1].pcm)
        if len(prompt.pcm) > self._max_bytes:
            return  # too big to cache; still returned to the caller
        self._entries[key_path] = (key, prompt)
        self._bytes += len(prompt.pcm)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            _path, (_key, evicted) = self._entries.popitem(last=False)
            self._bytes -= len(evicted.pcm)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pcm:
    channel: Channel
    pcm: bytes
    position: int


class Recording:
    """One call's recording: cheap pushes on the loop, decoding and writing in a thread.

    Use ``rec = await Recording.open(...)``, then ``push_pcm``/``push_tap`` as audio
    flows, ``await rec.flush()`` periodically (or run :meth:`run` in the call's
    TaskGroup), and ``await rec.close(ended_at)`` at hang-up.
    """

    def __init__(self, writer: WavPartWriter, info: RecordingInfo, clock_start: float, hold: int) -> None:
        self._writer = writer
        self._info = info
        self._clock_start = clock_start
        self._assembler = StereoAssembler(hold=hold)
        self._timelines = {Channel.CALLER: LegTimeline(), Channel.AGENT: LegTimeline()}
        self._pending: list[TapFrame | _Pcm] = []
        self._lock = asyncio.Lock()
        self._closed = asyncio.Event()
        self._taps: list[TapSource] = []
        self.dropped = 0
        """Frames dropped because :data:`sip.media.recorder.MAX_PENDING` were waiting for the thread."""
        self.path: Path | None = None

    @classmethod
    async def open(
        cls, directory: str | os.PathLike[str], info: RecordingInfo, *, clock_start: float, hold: float = 0.2
    ) -> Recording:
        """Create the part files in a worker thread. ``clock_start`` is the loop time of position 0.

        Raises:
            RecordingError: the files cannot be created.
        """
        writer = await asyncio.to_thread(WavPartWriter, directory, info)
        log.info("media.recording.started", serial=info.serial, call_id=info.call_id)
        return cls(writer, info, clock_start, round(hold * SAMPLE_RATE))

    @property
    def serial(self) -> RecordingSerial:
        """The recording's serial."""
        return self._info.serial

    def position(self, now: float) -> int:
        """Sample position of loop time ``now``."""
        return round((now - self._clock_start) * SAMPLE_RATE)

    def push_pcm(self, channel: Channel, pcm: bytes, now: float) -> None:
        """Queue mono PCM of ``channel`` that started at loop time ``now``."""
        if len(self._pending) < MAX_PENDING:
            self._pending.append(_Pcm(channel=channel, pcm=pcm, position=self.position(now)))
        else:
            self._overflow(1)

    def push_tap(self, frames: list[TapFrame]) -> None:
        """Queue frames tapped off a relay (decoded in the flush thread)."""
        room = MAX_PENDING - len(self._pending)
        self._pending.extend(frames[:max(room, 0)])
        if len(frames) > room:
            self._overflow(len(frames) - max(room, 0))

    def _overflow(self, frames: int) -> None:
        if not self.dropped:
            log.warning("media.recording.overflowed", serial=self._info.serial, pending=len(self._pending))
        self.dropped += frames

    def add_tap(self, tap: TapSource) -> None:
        """Pull tapped frames from ``tap`` at every flush of :meth:`run` and at :meth:`close`."""
        self._taps.append(tap)

    def _pull_taps(self) -> None:
        for tap in self._taps:
            self.push_tap(tap.drain_tap())

    async def flush(self) -> None:
        """Decode, assemble and write what is queued, in a worker thread.

        Raises:
            RecordingError: the write failed.
        """
        async with self._lock:
            batch, self._pending = self._pending, []
            if batch:
                await asyncio.to_thread(self._process, batch, False)

    async def close(self, ended_at: str) -> Path:
        """Write everything, finalise the files (rename) and return the WAV path.

        Raises:
            RecordingError: the recording cannot be finalised.
        """
        async with self._lock:
            self._pull_taps()
            self._taps.clear()
            batch, self._pending = self._pending, []
            await asyncio.to_thread(self._process, batch, True)
            self.path = await asyncio.to_thread(self._writer.finalize, ended_at)
        self._closed.set()
        log.info("media.recording.finished", serial=self._info.serial, samples=self._writer.samples,
                 dropped_frames=self.dropped)
        return self.path

    async def run(self, tap: TapSource | None = None, *, interval: float = 0.5) -> None:
        """Flush every ``interval`` seconds (pulling from ``tap`` first) until :meth:`close`."""
        while not self._closed.is_set():
            try:
                async with asyncio.timeout(interval):
                    await self._closed.wait()
            except TimeoutError:
                pass
            if self._closed.is_set():
                return
            if tap is not None:
                self.push_tap(tap.drain_tap())
            self._pull_taps()
            await self.flush()

    def _process(self, batch: list[TapFrame | _Pcm], final: bool) -> None:
        """Thread body: decode, place, interleave, write."""
        for item in batch:
            match item:
                case TapFrame():
                    pcm = decode(item.codec, item.payload)
                    pos = self._timelines[item.channel].position(
                        ssrc=item.ssrc, timestamp=item.timestamp, arrival=self.position(item.at)
                    )
                    self._assembler.push(item.channel, pcm, pos)
                case _Pcm():
                    self._assembler.push(item.channel, item.pcm, item.position)
        stereo = self._assembler.drain(final=final)
        if stereo:
            self._writer.write(stereo)

    async def abort(self) -> None:
        """Drop the recording and delete its part files."""
        async with self._lock:
            self._pending = []
            await asyncio.to_thread(self._writer.abort)
        self._closed.set()
@dataclass(slots=True)
class RelayCounters:
    """Packets of the relays of this process, added when each relay stops (for ``/metrics``)."""

    relays: int = 0
    received: int = 0
    forwarded: int = 0
    dropped: int = 0
    transcoded: int = 0
    tap_dropped: int = 0
    expected: int = 0
    lost: int = 0

    def add(self, relay: Relay) -> None:
        """Fold the counters of a relay that stopped."""
        self.relays += 1
        for side in LegSide:
            stats = relay.stats[side]
            expected, lost = relay.loss(side)
            self.received += stats.received
            self.forwarded += stats.forwarded
            self.dropped += stats.dropped
            self.transcoded += stats.transcoded
            self.tap_dropped += stats.tap_dropped
            self.expected += expected
            self.lost += max(0, lost)


RELAY_COUNTERS = RelayCounters()
"""Process-wide totals of every :class:`EndpointRelay` that has stopped."""


def _leg_config(endpoint: RtpEndpoint, channel: Channel, now: float) -> LegConfig:
    """A relay leg that continues the stream the endpoint's session was sending (same SSRC, next seq/ts)."""
    session = endpoint.session
    seq, ts = session.stream_position(now)
    config = session.config
    return LegConfig(codec=config.codec, event_pt=config.telephone_event_pt, ssrc=session.ssrc, initial_seq=seq,
                     initial_ts=ts, channel=channel)


class EndpointRelay:
    """Relay mode for two RTP endpoints: leg A (the caller, recorder channel CALLER) and leg B (AGENT).

    Per datagram (the loop calls :meth:`_from_a` / :meth:`_from_b` directly, see
    :meth:`RtpEndpoint.divert`): ``loop.time()``, the source check, the relay core's
    per-direction ``forward``, the other transport's ``sendto`` to the other session's
    remote address. The sessions' RTP timeout is fed once a second (``ACTIVITY_S``) from
    the last arrival time instead of per packet. Symmetric RTP as the session does it: a
    leg's remote address follows a packet from a new address carrying a new SSRC (reported
    as :class:`PeerLatched`), or from the address its SDP gives (a re-INVITE sets
    ``session.remote``); the same SSRC from any other address is dropped. Relay events
    (:class:`sip.media.DtmfReceived`, :class:`PeerLatched`) go to ``on_event``.
    """

    ACTIVITY_S = 1.0

    def __init__(self, a: RtpEndpoint, b: RtpEndpoint, *, on_event: Callable[[MediaEvent], None] | None = None,
                 tap: bool = False, dtmf: DtmfMode = DtmfMode.PASS) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        self._loop = loop
        self._time = loop.time
        self.a, self.b = a, b
        self.relay = Relay(_leg_config(a, Channel.CALLER, now), _leg_config(b, Channel.AGENT, now), dtmf=dtmf,
                           tap=tap)
        self._forward_a, self._forward_b = self.relay.forwarder(LegSide.A), self.relay.forwarder(LegSide.B)
        self._events = self.relay.events
        self._send_a, self._send_b = a.raw_sender(), b.raw_sender()
        self._on_event = on_event
        self._session_a, self._session_b = a.session, b.session
        self._src: dict[LegSide, Any] = {LegSide.A: a.session.remote, LegSide.B: b.session.remote}
        self._src_a, self._src_b = self._src[LegSide.A], self._src[LegSide.B]
        self._ssrc: dict[LegSide, bytes | None] = {
            side: None if s.remote_ssrc is None else s.remote_ssrc.to_bytes(4, "big")
            for side, s in ((LegSide.A, a.session), (LegSide.B, b.session))
        }
        self._seen_a = self._seen_b = 0.0  # last arrival per leg, for the sessions' RTP timeout
        self._activity: asyncio.TimerHandle | None = loop.call_later(self.ACTIVITY_S, self._feed_activity)
        self.running = True
        a.divert(self._from_a, on_close=self.stop)
        b.divert(self._from_b, on_close=self.stop)
        log.debug("media.relay.started", port_a=a.local_port, port_b=b.local_port, tap=tap)

    def _from_a(self, data: bytes, addr: Any) -> None:
        """Hot path: a datagram on leg A's RTP socket."""
        now = self._time()
        if addr != self._src_a and not self._latch(LegSide.A, data, addr, now):
            return
        self._seen_a = now
        out = self._forward_a(data, now)
        if out is not None:
            dest = self._session_b.remote
            if dest is not None:
                self._send_b(out, dest)
        if self._events:
            self._deliver()

    def _from_b(self, data: bytes, addr: Any) -> None:
        """Hot path: a datagram on leg B's RTP socket."""
        now = self._time()
        if addr != self._src_b and not self._latch(LegSide.B, data, addr, now):
            return
        self._seen_b = now
        out = self._forward_b(data, now)
        if out is not None:
            dest = self._session_a.remote
            if dest is not None:
                self._send_a(out, dest)
        if self._events:
            self._deliver()

    def _feed_activity(self) -> None:
        """Once a second: tell each session when its stream last delivered (its RTP timeout)."""
        self._activity = None
        if not self.running:
            return
        if self._seen_a:
            self._session_a.relayed(self._seen_a)
        if self._seen_b:
            self._session_b.relayed(self._seen_b)
        self._activity = self._loop.call_later(self.ACTIVITY_S, self._feed_activity)

    def _latch(self, side: LegSide, data: bytes, addr: Any, now: float) -> bool:
        """A packet from an address that is not the leg's peer: latch onto it, or refuse it."""
        ssrc = data[8:12]
        session = self._session_a if side is LegSide.A else self._session_b
        previous = session.remote
        source = (str(addr[0]), int(addr[1]))
        if len(ssrc) < 4 or (ssrc == self._ssrc[side] and source != previous):
            self.relay.stats[side].dropped += 1
            return False  # too short, or the same stream from a second address: not our peer
        session.remote = source
        self._src[side] = addr
        self._ssrc[side] = ssrc
        if side is LegSide.A:
            self._src_a = addr
        else:
            self._src_b = addr
        log.info("media.relay.latched", side=side.value, addr=session.remote, previous=previous)
        if self._on_event is not None:
            self._on_event(PeerLatched(at=now, side=side, addr=session.remote))
        return True

    def _deliver(self) -> None:
        while (event := self.relay.next_event()) is not None:
            if self._on_event is not None:
                self._on_event(event)

    def drain_tap(self) -> list[TapFrame]:
        """The audio tapped for the recorder since the last call (see :attr:`Relay.tap`)."""
        return self.relay.drain_tap()

    def stop(self) -> None:
        """Give both streams back to the endpoints' sessions (same SSRC, next seq/ts); count. Idempotent."""
        if not self.running:
            return
        self.running = False
        if self._activity is not None:
            self._activity.cancel()
            self._activity = None
        for endpoint, side, seen in ((self.a, LegSide.A, self._seen_a), (self.b, LegSide.B, self._seen_b)):
            endpoint.divert(None)
            if seen:
                endpoint.session.relayed(seen)
            next_seq, last_ts, last_at = self.relay.position(side)
            endpoint.session.continue_stream(next_seq, last_ts, last_at, self.relay.stats[side.other].forwarded)
        RELAY_COUNTERS.add(self.relay)
        self._on_event = None
        log.debug("media.relay.stopped", forwarded_a=self.relay.stats[LegSide.A].forwarded,
                  forwarded_b=self.relay.stats[LegSide.B].forwarded)
