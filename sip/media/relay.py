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
from dataclasses import dataclass, field
from enum import Enum

from sip.media.events import DtmfReceived, LegSide, MediaEvent
from sip.media.frames import SAMPLE_RATE
from sip.media.recorder import Channel, TapFrame
from sip.rtp.g711 import Codec, transcode

_HEADER = struct.Struct("!BBHII")
_EVENT = struct.Struct("!BBH")
CN_PAYLOAD_TYPE = 13
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
    expected: int = 0
    """Packets expected from the sequence numbers of the sources that have ended (A.3)."""
    counted: int = 0
    """RTP packets received from those sources (audio, events, CN)."""


class _Reception:
    """Sequence-number accounting of the current source on one leg (RFC 3550 A.1/A.3)."""

    __slots__ = ("base", "cycles", "max_seq", "received", "ssrc")

    def __init__(self, ssrc: int, seq: int) -> None:
        self.ssrc = ssrc
        self.base = seq
        self.max_seq = seq
        self.cycles = 0
        self.received = 0

    @property
    def expected(self) -> int:
        return self.cycles + self.max_seq - self.base + 1


class _Rewriter:
    """SSRC/seq/ts rewriting for packets sent on one leg."""

    __slots__ = ("in_ssrc", "last_at", "last_seq", "last_ts", "seq_off", "ssrc", "ts_off")

    def __init__(self, cfg: LegConfig) -> None:
        self.ssrc = cfg.ssrc
        self.in_ssrc: int | None = None
        self.seq_off = 0
        self.ts_off = 0
        self.last_seq = (cfg.initial_seq - 1) & 0xFFFF
        self.last_ts = cfg.initial_ts
        self.last_at: float | None = None

    def rebase(self, seq: int, ts: int, ssrc: int, now: float) -> None:
        """A new source: continue the outgoing stream where it stopped."""
        step = 0 if self.last_at is None else max(160, round((now - self.last_at) * SAMPLE_RATE))
        self.seq_off = (self.last_seq + 1 - seq) & 0xFFFF
        self.ts_off = (self.last_ts + step - ts) & 0xFFFFFFFF
        self.in_ssrc = ssrc


class Relay:
    """Pure two-leg RTP relay; see the module docstring."""

    def __init__(self, a: LegConfig, b: LegConfig, *, dtmf: DtmfMode = DtmfMode.PASS, tap: bool = False) -> None:
        self._cfg = {LegSide.A: a, LegSide.B: b}
        self._out = {LegSide.A: _Rewriter(a), LegSide.B: _Rewriter(b)}  # keyed by the leg we send on
        self._dtmf = dtmf
        self.tap = tap
        self._tapped: list[TapFrame] = []
        self._events: deque[MediaEvent] = deque()
        self._last_event: dict[LegSide, tuple[int, int]] = {}
        self._rx: dict[LegSide, _Reception | None] = {LegSide.A: None, LegSide.B: None}
        self.stats = {LegSide.A: LegStats(), LegSide.B: LegStats()}

    def config(self, side: LegSide) -> LegConfig:
        """The configuration of leg ``side``."""
        return self._cfg[side]

    def forward(self, side: LegSide, data: bytes, now: float) -> bytes | None:
        """Take a datagram received on ``side``; return what to send on the other leg, or ``None``."""
        stats = self.stats[side]
        stats.received += 1
        if len(data) < 12:
            stats.dropped += 1
            return None
        b0, b1, seq, ts, ssrc = _HEADER.unpack_from(data)
        pt = b1 & 0x7F
        if b0 == 0x80:
            payload = data[12:]
        else:
            bounded = self._payload(data, b0)
            if bounded is None:
                stats.dropped += 1
                return None
            payload = bounded
        if 200 <= b1 <= 204:  # RTCP on a muxed port (RFC 5761 §4): not ours to relay
            stats.dropped += 1
            return None
        rx = self._rx[side]
        if rx is None or rx.ssrc != ssrc:
            rx = self._new_source(side, ssrc, seq)
        elif (seq - rx.max_seq) & 0xFFFF < 0x8000:  # in order (or a jump ahead): A.1's update_seq, simplified
            if seq < rx.max_seq:
                rx.cycles += 0x10000
            rx.max_seq = seq
        rx.received += 1
        cfg_in = self._cfg[side]
        out_side = LegSide.B if side is LegSide.A else LegSide.A
        cfg_out = self._cfg[out_side]
        if pt == cfg_in.audio_pt or pt == 0 or pt == 8:  # noqa: PLR1714 - ints, cheapest as written
            codec = cfg_in.codec if pt == cfg_in.audio_pt else Codec(pt)  # the law actually sent
            out_pt = cfg_out.audio_pt
            if self.tap:
                self._tapped.append(
                    TapFrame(channel=cfg_in.channel, codec=codec, ssrc=ssrc, timestamp=ts, payload=payload, at=now)
                )
            if codec is not cfg_out.codec:
                payload = transcode(payload, codec, cfg_out.codec)
                stats.transcoded += 1
        elif pt == cfg_in.event_pt:
            self._on_event(side, payload, ssrc, ts, now)
            stats.events += 1
            if self._dtmf is DtmfMode.SURFACE or cfg_out.event_pt is None:
                return None
            out_pt = cfg_out.event_pt
        elif pt == CN_PAYLOAD_TYPE:
            out_pt = pt
        else:
            stats.dropped += 1
            return None
        rw = self._out[out_side]
        marker = b1 & 0x80
        if ssrc != rw.in_ssrc:
            rw.rebase(seq, ts, ssrc, now)
            marker = 0x80
        out_seq = (seq + rw.seq_off) & 0xFFFF
        out_ts = (ts + rw.ts_off) & 0xFFFFFFFF
        rw.last_seq, rw.last_ts, rw.last_at = out_seq, out_ts, now
        stats.forwarded += 1
        return _HEADER.pack(0x80, marker | out_pt, out_seq, out_ts, rw.ssrc) + payload

    def _new_source(self, side: LegSide, ssrc: int, seq: int) -> _Reception:
        """A first packet, or a new SSRC on ``side``: close the accounting of the previous source."""
        self._end_source(side)
        rx = self._rx[side] = _Reception(ssrc, seq)
        return rx

    def _end_source(self, side: LegSide) -> None:
        rx = self._rx[side]
        if rx is not None:
            stats = self.stats[side]
            stats.expected += rx.expected
            stats.counted += rx.received
            self._rx[side] = None

    def loss(self, side: LegSide) -> tuple[int, int]:
        """``(expected, lost)`` packets on leg ``side`` so far, from the sequence numbers (RFC 3550 A.3).

        Duplicates make ``lost`` smaller (it can go below zero, as the RFC's cumulative count does).
        """
        stats, rx = self.stats[side], self._rx[side]
        expected = stats.expected + (rx.expected if rx else 0)
        received = stats.counted + (rx.received if rx else 0)
        return expected, expected - received

    def position(self, side: LegSide) -> tuple[int, int, float | None]:
        """Where the stream we send on ``side`` stands: ``(next seq, last timestamp, last send time)``.

        A sender that takes over the leg (the RTP session, when the call leaves the relay)
        continues from here, so the far end sees one stream.
        """
        rw = self._out[side]
        return (rw.last_seq + 1) & 0xFFFF, rw.last_ts, rw.last_at

    def next_event(self) -> MediaEvent | None:
        """Pop the next event, or ``None``."""
        return self._events.popleft() if self._events else None

    @property
    def has_events(self) -> bool:
        """Whether :meth:`next_event` would return an event."""
        return bool(self._events)

    def drain_tap(self) -> list[TapFrame]:
        """Return and forget the audio tapped since the last call."""
        tapped, self._tapped = self._tapped, []
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

    def _on_event(self, side: LegSide, payload: bytes, ssrc: int, ts: int, now: float) -> None:
        if len(payload) < 4:
            return
        event, flags, duration = _EVENT.unpack_from(payload)
        if not flags & 0x80 or event >= len(_DIGITS):
            return
        key = (ssrc, ts)
        if self._last_event.get(side) == key:
            return  # retransmitted end packet (RFC 4733 §2.5.1.4)
        self._last_event[side] = key
        self._events.append(DtmfReceived(at=now, side=side, digit=_DIGITS[event], duration=duration))
