"""RFC 4733 telephone-event payloads: parse, serialise, receive with dedup, and send.

Payload (RFC 4733 §2.3)::

    | event (8) |E|R| volume (6) | duration (16) |

One key press is a run of packets with the same RTP timestamp: the first carries the
marker bit, updates grow ``duration``, and the end packet (E bit) is sent three times
(§2.5.1.4: "the final packet for each event and for each segment SHOULD be sent a total
of three times"). :class:`DtmfReceiver` turns a run into ONE digit; a new timestamp is a
new event. :func:`digit_frames` builds the run to send. Pure: no clock, no sockets.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sip.rtp.errors import DtmfError

__all__ = ["DIGITS", "DtmfDigit", "DtmfFrame", "DtmfReceiver", "TelephoneEvent", "digit_frames"]

DIGITS = "0123456789*#ABCD"
_PAYLOAD = struct.Struct("!BBH")


@dataclass(frozen=True, slots=True, kw_only=True)
class TelephoneEvent:
    """One telephone-event payload; ``duration`` in timestamp units, ``volume`` in -dBm0."""

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0

    def __post_init__(self) -> None:
        if not (0 <= self.event <= 255 and 0 <= self.volume <= 63 and 0 <= self.duration <= 0xFFFF):
            raise DtmfError("telephone-event field out of range")

    @property
    def digit(self) -> str | None:
        """The DTMF character for events 0-15 (RFC 4733 §3.2), None for others."""
        return DIGITS[self.event] if self.event < len(DIGITS) else None

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """Raises:
        DtmfError: the payload is shorter than 4 bytes.
        """
        if len(payload) < _PAYLOAD.size:
            raise DtmfError(f"telephone-event payload of {len(payload)} bytes (need 4)")
        event, flags, duration = _PAYLOAD.unpack_from(payload)
        return cls(event=event, end=bool(flags & 0x80), volume=flags & 0x3F, duration=duration)

    def serialize(self) -> bytes:
        return _PAYLOAD.pack(self.event, (0x80 if self.end else 0) | self.volume, self.duration)


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfDigit:
    """A completed key press: ``duration`` in seconds."""

    digit: str
    duration: float
    timestamp: int


class DtmfReceiver:
    """Collapse telephone-event runs into digits, one per RTP timestamp."""

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self._current: tuple[int, TelephoneEvent] | None = None  # (timestamp, last payload) not yet ended
        self._done: set[int] = set()  # timestamps already reported (bounded below)

    def receive(self, timestamp: int, payload: bytes) -> list[DtmfDigit]:
        """Feed one telephone-event packet; returns the digits it completes (zero, one, rarely two).

        Raises:
            DtmfError: the payload is not a telephone-event.
        """
        event = TelephoneEvent.parse(payload)
        if timestamp in self._done:
            return []  # a retransmitted end packet of an event already reported
        out: list[DtmfDigit] = []
        if self._current is not None and self._current[0] != timestamp:
            out += self._finish(*self._current)  # its end packets were all lost: report it anyway
        if event.end:
            out += self._finish(timestamp, event)
        else:
            self._current = (timestamp, event)
        return out

    def flush(self) -> list[DtmfDigit]:
        """Report an event whose end never came (call at stream end or timeout)."""
        return self._finish(*self._current) if self._current is not None else []

    def _finish(self, timestamp: int, event: TelephoneEvent) -> list[DtmfDigit]:
        self._current = None
        self._done.add(timestamp)
        if len(self._done) > 32:
            self._done = {timestamp}
        if event.digit is None:
            return []
        return [DtmfDigit(digit=event.digit, duration=event.duration / self.clock_rate, timestamp=timestamp)]


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfFrame:
    """One packet to send: ``offset`` seconds after the event starts; all share one RTP timestamp."""

    payload: bytes
    marker: bool
    offset: float


def digit_frames(
    digit: str, *, duration: float = 0.1, volume: int = 10, packet_time: float = 0.02, clock_rate: int = 8000
) -> list[DtmfFrame]:
    """The packets for one key press: start (marker), updates every ``packet_time``, three ends.

    Raises:
        DtmfError: ``digit`` is not one of ``0-9 * # A-D`` or the duration does not fit 16 bits.
    """
    if len(digit) != 1 or digit.upper() not in DIGITS:
        raise DtmfError(f"not a DTMF digit: {digit!r}")
    event = DIGITS.index(digit.upper())
    total = round(duration * clock_rate)
    step = round(packet_time * clock_rate)
    if not 0 < step <= total <= 0xFFFF:
        raise DtmfError("DTMF duration must be between one packet time and 8.19 s")
    frames: list[DtmfFrame] = []
    elapsed = step
    while elapsed < total:
        payload = TelephoneEvent(event=event, volume=volume, duration=elapsed).serialize()
        frames.append(DtmfFrame(payload=payload, marker=not frames, offset=(elapsed - step) / clock_rate))
        elapsed += step
    end = TelephoneEvent(event=event, end=True, volume=volume, duration=total).serialize()
    offset = (total - step) / clock_rate if frames else 0.0
    # RFC 4733 §2.5.1.4: the end packet is sent three times (same timestamp and duration).
    frames += [DtmfFrame(payload=end, marker=not frames and i == 0, offset=offset) for i in range(3)]
    return frames
