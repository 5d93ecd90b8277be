"""Two-leg RTP relay: the fast path for a plain two-party call (pure core).

One :class:`Relay` joins leg A (by convention the caller/trunk) and leg B (the agent).
``forward(side, data, now)`` takes a datagram received on ``side`` and returns the
datagram to send on the other leg, or ``None``. Per packet it does only:

- check the fixed header (RFC 3550 §5.1: "The version defined by this specification is
  two (2)"); RTCP on a muxed port (RFC 5761 §4, PT 72-76 with the marker) is dropped;
- map the payload type to the outgoing leg's (audio PT, RFC 4733 telephone-event PT,
  CN PT 13 unchanged; other PTs are dropped);
- rewrite SSRC, sequence number and timestamp by per-direction offsets, so each outgoing
  leg sees one continuous stream from our SSRC even when the source SSRC changes
  (re-INVITE, peer restart): the new source continues at ``last seq + 1`` and at a
  timestamp advanced by the elapsed time, with the marker bit set;
- transcode PCMU↔PCMA only when the legs' codecs differ (``audioop``, ~1 µs per frame:
  far cheaper than a thread hop, so it stays inline; see docs/media-mixing.md), or when a
  phone sends the other G.711 law than it negotiated (some do): the packet is taken by its
  *actual* payload type, as :class:`sip.rtp.RtpSession` decodes it;
- count, per receiving leg, the packets expected from the sequence numbers and those lost
  (RFC 3550 A.3: extended highest sequence number minus the first, plus one, minus the
  received; restarted per source SSRC), and the packets transcoded.
- strip CSRCs, header extensions and padding (they describe the other leg's hop).

RFC 4733 events are surfaced as :class:`DtmfReceived` (once per event, on its end
packet; §2.5.1.4 sends the end packet three times) and, with ``DtmfMode.PASS``, also
forwarded with the outgoing leg's telephone-event PT. With ``DtmfMode.SURFACE`` they
are consumed (the controller decides, e.g. an IVR digit), and they are always consumed
when the outgoing leg did not negotiate telephone-event.

There is no jitter buffer: a packet leaves at the moment it arrives, so a lost packet
never holds up the ones behind it (loss and reordering reach the far end as they are,
whose own jitter buffer deals with them).

With ``tap`` on, each audio payload is also kept as a :class:`TapFrame` (still encoded)
for the recorder, which decodes batches in its worker thread (``drain_tap()``).
"""

from __future__ import annotations

import random
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from sip.media.events import DtmfReceived, LegSide, MediaEvent
from sip.media.frames import SAMPLE_RATE
from sip.media.recorder import Channel, TapFrame
from sip.rtp.g711 import Codec, transcode

_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")
CN_PAYLOAD_TYPE = 13
TAP_LIMIT = 1000
"""Tapped frames a relay holds for the recorder at most (5 s of a call's two directions at 20 ms); past
that, while the recorder does not drain them (a starved process), audio is dropped and counted rather
than memory growing."""
_DIGITS = "0123456789*#ABCD"


def _random32() -> int:
    return random.getrandbits(32)


def _random16() -> int:
    return random.getrandbits(16)


class DtmfMode(Enum):
    """What the relay does with RFC 4733 telephone-events."""

    PASS = "pass"  # forward to the other leg and surface a DtmfReceived
    SURFACE = "surface"  # surface a DtmfReceived only


@dataclass(frozen=True, slots=True, kw_only=True)
class LegConfig:
    """What was negotiated on one leg (from its SDP) and how we send on it."""

    codec: Codec
    event_pt: int | None = 101
    """Telephone-event payload type of this leg, ``None`` if not negotiated."""
    ssrc: int = field(default_factory=_random32)
    """The SSRC we send with on this leg (RFC 3550 §8: chosen at random)."""
    initial_seq: int = field(default_factory=_random16)
    initial_ts: int = field(default_factory=_random32)
    channel: Channel = Channel.CALLER
    """Recorder channel of the audio *received* from this leg."""

    @property
    def audio_pt(self) -> int:
        """Static payload type of the audio codec (RFC 3551 Table 4)."""
        return int(self.codec)


@dataclass(slots=True)
class LegStats:
    """Counters of packets received on one leg (``lost`` and ``expected``: see :meth:`Relay.loss`)."""

    received: int = 0
    forwarded: int = 0
    dropped: int = 0
    events: int = 0
    transcoded: int = 0
    tap_dropped: int = 0
    """Audio not kept for the recorder because :data:`TAP_LIMIT` frames were waiting."""
    expected: int = 0
    """Packets expected from the sequence numbers of the sources that have ended (A.3)."""
    counted: int = 0
    """RTP packets received from those sources (audio, events, CN)."""


class _Direction:
    """Everything one direction needs per packet (received on ``side``, sent on the other leg).

    Kept in one slotted object so the hot path does attribute loads only (no dict or enum
    lookups): the packet's source (reception accounting, RFC 3550 A.1/A.3, and the seq/ts
    offsets of the stream we send) and the outgoing leg's rewriting state.
    """

    __slots__ = ("cfg_in", "cfg_out", "event_pt", "events", "in_codec", "in_pt", "last_at", "last_event",
                 "last_seq", "last_ts", "out_event_pt", "out_pt", "out_ssrc", "pass_events", "rx_base", "rx_cycles",
                 "rx_max", "rx_received", "seq_off", "side", "src_ssrc", "stats", "tapped", "transcode_to", "ts_off")

    def __init__(self, side: LegSide, cfg_in: LegConfig, cfg_out: LegConfig, events: deque[MediaEvent],
                 dtmf: DtmfMode) -> None:
        self.side = side
        self.cfg_in, self.cfg_out = cfg_in, cfg_out
        self.in_pt, self.in_codec, self.event_pt = cfg_in.audio_pt, cfg_in.codec, cfg_in.event_pt
        self.out_pt, self.out_event_pt, self.out_ssrc = cfg_out.audio_pt, cfg_out.event_pt, cfg_out.ssrc
        self.transcode_to = None if cfg_in.codec is cfg_out.codec else cfg_out.codec
        self.pass_events = dtmf is DtmfMode.PASS and cfg_out.event_pt is not None
        self.events = events
        self.tapped: list[TapFrame] | None = None
        self.stats = LegStats()
        self.last_event: tuple[int, int] | None = None
        self.src_ssrc: int | None = None  # the source being relayed
        self.rx_base = self.rx_max = self.rx_cycles = self.rx_received = 0
        self.seq_off = self.ts_off = 0
        self.last_seq = (cfg_out.initial_seq - 1) & 0xFFFF
        self.last_ts = cfg_out.initial_ts
        self.last_at: float | None = None

    def forward(self, data: bytes, now: float) -> bytes | bytearray | None:
        """The hot path: one datagram received on ``side``; the datagram for the other leg, or None."""
        stats = self.stats
        stats.received += 1
        if len(data) < 12:
            stats.dropped += 1
            return None
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        if 200 <= b1 <= 204:  # RTCP on a muxed port (RFC 5761 §4): not ours to relay
            stats.dropped += 1
            return None
        if ssrc != self.src_ssrc:
            self._new_source(seq, ts, ssrc, now)
            b1 |= 0x80  # the marker tells the far end a new stream segment starts
        elif (seq - self.rx_max) & 0xFFFF < 0x8000:  # in order or ahead: RFC 3550 A.1 update_seq, simplified
            if seq < self.rx_max:
                self.rx_cycles += 0x10000
            self.rx_max = seq
        self.rx_received += 1
        pt = b1 & 0x7F
        if pt == self.in_pt and b0 == 0x80 and self.transcode_to is None and self.tapped is None:
            out = bytearray(data)  # the common case: same law, plain 12-byte header, no recording
            out_pt = self.out_pt
        else:
            payload = data[12:] if b0 == 0x80 else Relay._payload(data, b0)
            if payload is None:
                stats.dropped += 1
                return None
            if pt == self.in_pt or pt == 0 or pt == 8:  # noqa: PLR1714 - ints: cheapest as written
                codec = self.in_codec if pt == self.in_pt else Codec(pt)  # the law actually sent
                out_pt = self.out_pt
                tapped = self.tapped
                if tapped is not None:
                    if len(tapped) < TAP_LIMIT:
                        tapped.append(TapFrame(self.cfg_in.channel, codec, ssrc, ts, payload, now))
                    else:
                        stats.tap_dropped += 1
                if codec is not self.cfg_out.codec:
                    payload = transcode(payload, codec, self.cfg_out.codec)
                    stats.transcoded += 1
            elif pt == self.event_pt:
                self._on_event(payload, ssrc, ts, now)
                stats.events += 1
                if not self.pass_events:
                    return None
                out_pt = self.out_event_pt  # type: ignore[assignment]  # not None when pass_events
            elif pt == CN_PAYLOAD_TYPE:
                out_pt = pt
            else:
                stats.dropped += 1
                return None
            out = bytearray(12)
            out += payload
        out_seq = (seq + self.seq_off) & 0xFFFF
        out_ts = (ts + self.ts_off) & 0xFFFFFFFF
        self.last_seq, self.last_ts, self.last_at = out_seq, out_ts, now
        stats.forwarded += 1
        _HEADER.pack_into(out, 0, 0x80, (b1 & 0x80) | out_pt, out_seq, out_ts, self.out_ssrc)
        return out

    def _new_source(self, seq: int, ts: int, ssrc: int, now: float) -> None:
        """A first packet or a new SSRC: close the reception count, continue the outgoing stream."""
        self._end_source()
        self.src_ssrc = ssrc
        self.rx_base = self.rx_max = seq
        step = 0 if self.last_at is None else max(160, round((now - self.last_at) * SAMPLE_RATE))
        self.seq_off = (self.last_seq + 1 - seq) & 0xFFFF
        self.ts_off = (self.last_ts + step - ts) & 0xFFFFFFFF

    def _end_source(self) -> None:
        if self.src_ssrc is not None:
            self.stats.expected += self.rx_cycles + self.rx_max - self.rx_base + 1
            self.stats.counted += self.rx_received
        self.rx_cycles = self.rx_received = 0
        self.src_ssrc = None

    def loss(self) -> tuple[int, int]:
        expected, received = self.stats.expected, self.stats.counted
        if self.src_ssrc is not None:
            expected += self.rx_cycles + self.rx_max - self.rx_base + 1
            received += self.rx_received
        return expected, expected - received

    def _on_event(self, payload: bytes, ssrc: int, ts: int, now: float) -> None:
        if len(payload) < 4:
            return
        event, flags, duration = _EVENT.unpack_from(payload)
        if not flags & 0x80 or event >= len(_DIGITS):
            return
        key = (ssrc, ts)
        if self.last_event == key:
            return  # retransmitted end packet (RFC 4733 §2.5.1.4)
        self.last_event = key
        self.events.append(DtmfReceived(at=now, side=self.side, digit=_DIGITS[event], duration=duration))


class Relay:
    """Pure two-leg RTP relay; see the module docstring."""

    def __init__(self, a: LegConfig, b: LegConfig, *, dtmf: DtmfMode = DtmfMode.PASS, tap: bool = False) -> None:
        self._cfg = {LegSide.A: a, LegSide.B: b}
        self.events: deque[MediaEvent] = deque()
        """Pending events (an adapter may test this deque for truth instead of calling :meth:`next_event`)."""
        self._dir = {LegSide.A: _Direction(LegSide.A, a, b, self.events, dtmf),
                     LegSide.B: _Direction(LegSide.B, b, a, self.events, dtmf)}  # keyed by the receiving leg
        self._tapped: list[TapFrame] = []
        self.tap = tap
        self.stats = {side: d.stats for side, d in self._dir.items()}

    @property
    def tap(self) -> bool:
        """Whether audio payloads are kept for the recorder (:meth:`drain_tap`)."""
        return self._dir[LegSide.A].tapped is not None

    @tap.setter
    def tap(self, on: bool) -> None:
        for d in self._dir.values():
            d.tapped = self._tapped if on else None

    def config(self, side: LegSide) -> LegConfig:
        """The configuration of leg ``side``."""
        return self._cfg[side]

    def forward(self, side: LegSide, data: bytes, now: float) -> bytes | bytearray | None:
        """Take a datagram received on ``side``; return what to send on the other leg, or ``None``."""
        return self._dir[side].forward(data, now)

    def forwarder(self, side: LegSide) -> Callable[[bytes, float], bytes | bytearray | None]:
        """``forward`` bound to one receiving leg (for an adapter's hot path: no per-packet lookup)."""
        return self._dir[side].forward

    def loss(self, side: LegSide) -> tuple[int, int]:
        """``(expected, lost)`` packets on leg ``side`` so far, from the sequence numbers (RFC 3550 A.3).

        Duplicates make ``lost`` smaller (it can go below zero, as the RFC's cumulative count does).
        """
        return self._dir[side].loss()

    def position(self, side: LegSide) -> tuple[int, int, float | None]:
        """Where the stream we send on ``side`` stands: ``(next seq, last timestamp, last send time)``.

        A sender that takes over the leg (the RTP session, when the call leaves the relay)
        continues from here, so the far end sees one stream.
        """
        d = self._dir[side.other]  # the direction that sends on ``side``
        return (d.last_seq + 1) & 0xFFFF, d.last_ts, d.last_at

    def next_event(self) -> MediaEvent | None:
        """Pop the next event, or ``None``."""
        return self.events.popleft() if self.events else None

    @property
    def has_events(self) -> bool:
        """Whether :meth:`next_event` would return an event."""
        return bool(self.events)

    def drain_tap(self) -> list[TapFrame]:
        """Return and forget the audio tapped since the last call."""
        tapped = self._tapped[:]
        self._tapped.clear()  # the directions hold this list
        return tapped

    @staticmethod
    def _payload(data: bytes, b0: int) -> bytes | None:
        """Slow path: payload bounds of a packet with CSRCs, an extension or padding."""
        if b0 >> 6 != 2:
            return None
        offset = 12 + 4 * (b0 & 0x0F)
        end = len(data)
        if b0 & 0x10:
            if offset + 4 > end:
                return None
            offset += 4 + 4 * int.from_bytes(data[offset + 2 : offset + 4], "big")
        if b0 & 0x20:
            if end <= offset or data[-1] == 0:
                return None
            end -= data[-1]
        return data[offset:end] if offset <= end else None
