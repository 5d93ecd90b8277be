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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog

from sip.media.events import LegSide, MediaEvent, PeerLatched, RecordingSerial
from sip.media.frames import SAMPLE_RATE
from sip.media.player import Prompt
from sip.media.prompts import CacheKey, stat_and_load
from sip.media.recfiles import RecordingInfo, WavPartWriter
from sip.media.recorder import Channel, LegTimeline, StereoAssembler, TapFrame, TapSource
from sip.media.relay import Relay
from sip.rtp.g711 import decode

log = structlog.get_logger(__name__)

Addr = tuple[str, int]


class DatagramSender(Protocol):
    """The part of ``asyncio.DatagramTransport`` the relay uses."""

    def sendto(self, data: bytes, addr: Any = None, /) -> None:
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
        self._pending.append(_Pcm(channel=channel, pcm=pcm, position=self.position(now)))

    def push_tap(self, frames: list[TapFrame]) -> None:
        """Queue frames tapped off a relay (decoded in the flush thread)."""
        self._pending.extend(frames)

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
            batch, self._pending = self._pending, []
            await asyncio.to_thread(self._process, batch, True)
            self.path = await asyncio.to_thread(self._writer.finalize, ended_at)
        self._closed.set()
        log.info("media.recording.finished", serial=self._info.serial, samples=self._writer.samples)
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
