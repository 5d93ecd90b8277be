"""RTCP packets and receiver statistics (RFC 3550 §6.4-§6.6, Appendix A.1, A.3, A.8).

Packets: SR (200), RR (201), SDES (202, CNAME and other items kept raw), BYE (203); any
other type is kept as :class:`UnknownRtcp`. :func:`parse_compound` splits a compound
packet (RFC 3550 §6.1) and raises only :class:`RtcpPacketError`.

:class:`ReceptionStats` is the receiver side of one source: the A.1 sequence validation
(extended highest sequence number with 65535 → 0 wrap counted in ``cycles``), A.3
cumulative and fraction lost, and A.8 interarrival jitter. Time is passed in (seconds).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sip.rtp.errors import RtcpPacketError

__all__ = [
    "Bye",
    "ReceiverReport",
    "ReceptionStats",
    "ReportBlock",
    "RtcpPacket",
    "SdesChunk",
    "SenderReport",
    "SourceDescription",
    "UnknownRtcp",
    "ntp_middle",
    "parse_compound",
    "serialize_compound",
]

SR, RR, SDES, BYE = 200, 201, 202, 203
SDES_CNAME = 1
_HEAD = struct.Struct("!BBH")
_BLOCK = struct.Struct("!IB3sIIII")
_SR_INFO = struct.Struct("!IQIII")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportBlock:
    """One reception report block (RFC 3550 §6.4.1); ``cumulative_lost`` is signed 24-bit."""

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_seq: int = 0
    jitter: int = 0
    lsr: int = 0
    dlsr: int = 0

    def pack(self) -> bytes:
        lost = (self.cumulative_lost & 0xFFFFFF).to_bytes(3, "big")
        return _BLOCK.pack(self.ssrc, self.fraction_lost, lost, self.highest_seq, self.jitter, self.lsr, self.dlsr)

    @classmethod
    def unpack(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _BLOCK.unpack_from(data, offset)
        cumulative = int.from_bytes(lost, "big", signed=True)
        return cls(
            ssrc=ssrc,
            fraction_lost=fraction,
            cumulative_lost=cumulative,
            highest_seq=highest,
            jitter=jitter,
            lsr=lsr,
            dlsr=dlsr,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SenderReport:
    """SR: sender info (64-bit NTP timestamp as an int) and up to 31 report blocks."""

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceiverReport:
    """RR: the reporter's SSRC and up to 31 report blocks."""

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class SdesChunk:
    """One SDES chunk: an SSRC and its (item type, value) pairs."""

    ssrc: int
    items: tuple[tuple[int, bytes], ...] = ()

    @property
    def cname(self) -> str | None:
        value = next((v for t, v in self.items if t == SDES_CNAME), None)
        return None if value is None else value.decode("utf-8", errors="replace")


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceDescription:
    """SDES (RFC 3550 §6.5)."""

    chunks: tuple[SdesChunk, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Bye:
    """BYE (RFC 3550 §6.6) with an optional reason."""

    sources: tuple[int, ...] = ()
    reason: bytes | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownRtcp:
    """An RTCP packet type we do not model (APP, XR, feedback...), kept as bytes."""

    packet_type: int
    count: int
    body: bytes


RtcpPacket = SenderReport | ReceiverReport | SourceDescription | Bye | UnknownRtcp


def _pad4(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _frame(count: int, packet_type: int, body: bytes) -> bytes:
    if count > 31:
        raise RtcpPacketError("an RTCP packet holds at most 31 reports, chunks or sources")
    return _HEAD.pack(0x80 | count, packet_type, len(body) // 4) + body


def _serialize(packet: RtcpPacket) -> bytes:
    match packet:
        case SenderReport():
            info = _SR_INFO.pack(
                packet.ssrc, packet.ntp_timestamp, packet.rtp_timestamp, packet.packet_count, packet.octet_count
            )
            return _frame(len(packet.reports), SR, info + b"".join(r.pack() for r in packet.reports))
        case ReceiverReport():
            body = struct.pack("!I", packet.ssrc) + b"".join(r.pack() for r in packet.reports)
            return _frame(len(packet.reports), RR, body)
        case SourceDescription():
            chunks = []
            for chunk in packet.chunks:
                items = b"".join(bytes((t, len(v))) + v for t, v in chunk.items)
                # RFC 3550 §6.5: the item list ends with a null octet, then pads to a 32-bit boundary.
                chunks.append(struct.pack("!I", chunk.ssrc) + items + bytes(4 - len(items) % 4))
            return _frame(len(packet.chunks), SDES, b"".join(chunks))
        case Bye():
            body = b"".join(struct.pack("!I", s) for s in packet.sources)
            if packet.reason is not None:
                body += _pad4(bytes((len(packet.reason),)) + packet.reason)
            return _frame(len(packet.sources), BYE, body)
        case UnknownRtcp():
            return _frame(packet.count, packet.packet_type, _pad4(packet.body))


def serialize_compound(packets: list[RtcpPacket]) -> bytes:
    """Serialise packets into one compound datagram (RFC 3550 §6.1).

    Raises:
        RtcpPacketError: a packet holds more than 31 items or a value out of range.
    """
    try:
        return b"".join(_serialize(p) for p in packets)
    except (struct.error, ValueError, OverflowError) as exc:
        raise RtcpPacketError(f"cannot serialise RTCP: {exc}") from exc


def _parse_one(packet_type: int, count: int, body: bytes) -> RtcpPacket:
    if packet_type == SR:
        ssrc, ntp, rtp_ts, packets, octets = _SR_INFO.unpack_from(body)
        blocks = tuple(ReportBlock.unpack(body, 24 + 24 * i) for i in range(count))
        return SenderReport(
            ssrc=ssrc, ntp_timestamp=ntp, rtp_timestamp=rtp_ts, packet_count=packets, octet_count=octets, reports=blocks
        )
    if packet_type == RR:
        (ssrc,) = struct.unpack_from("!I", body)
        return ReceiverReport(ssrc=ssrc, reports=tuple(ReportBlock.unpack(body, 4 + 24 * i) for i in range(count)))
    if packet_type == SDES:
        chunks, pos = [], 0
        for _ in range(count):
            (ssrc,) = struct.unpack_from("!I", body, pos)
            pos += 4
            items = []
            while body[pos] != 0:
                item_type, length = body[pos], body[pos + 1]
                if pos + 2 + length > len(body):
                    raise RtcpPacketError("SDES item runs past the packet")
                items.append((item_type, body[pos + 2 : pos + 2 + length]))
                pos += 2 + length
            pos += 4 - pos % 4  # the null terminator and padding to the next 32-bit boundary
            chunks.append(SdesChunk(ssrc=ssrc, items=tuple(items)))
        return SourceDescription(chunks=tuple(chunks))
    if packet_type == BYE:
        sources = struct.unpack_from(f"!{count}I", body)
        reason = None
        if len(body) > 4 * count:
            length = body[4 * count]
            reason = body[4 * count + 1 : 4 * count + 1 + length]
            if len(reason) != length:
                raise RtcpPacketError("BYE reason runs past the packet")
        return Bye(sources=tuple(sources), reason=reason)
    return UnknownRtcp(packet_type=packet_type, count=count, body=body)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse a (compound) RTCP datagram.

    Raises:
        RtcpPacketError: not version 2, bad lengths, or a truncated packet.
    """
    data = bytes(data)
    packets: list[RtcpPacket] = []
    pos = 0
    if len(data) < 4:
        raise RtcpPacketError("RTCP datagram shorter than one header")
    while pos < len(data):
        try:
            first, packet_type, words = _HEAD.unpack_from(data, pos)
            if first >> 6 != 2:
                raise RtcpPacketError(f"RTCP version {first >> 6} is not 2")
            end = pos + 4 + 4 * words
            if end > len(data):
                raise RtcpPacketError("RTCP length runs past the datagram")
            body = data[pos + 4 : end]
            if first & 0x20:  # padding: the last octet counts the padding octets
                if not body or not 0 < body[-1] <= len(body):
                    raise RtcpPacketError("bad RTCP padding")
                body = body[: -body[-1]]
            packets.append(_parse_one(packet_type, first & 0x1F, body))
        except (struct.error, IndexError, ValueError) as exc:
            raise RtcpPacketError(f"malformed RTCP packet: {exc}") from exc
        pos = end
    return packets


def ntp_middle(ntp_timestamp: int) -> int:
    """The middle 32 bits of a 64-bit NTP timestamp, as used in LSR (RFC 3550 §6.4.1)."""
    return (ntp_timestamp >> 16) & 0xFFFFFFFF


MAX_DROPOUT = 3000
MAX_MISORDER = 100
RTP_SEQ_MOD = 1 << 16


class ReceptionStats:
    """Receiver statistics for one source (RFC 3550 A.1, A.3, A.8); ``clock_rate`` in Hz."""

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0
        self.bad_seq = RTP_SEQ_MOD + 1
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self.transit: int | None = None
        self._jitter = 0.0
        self.lsr = 0
        self.sr_received_at: float | None = None
        self._started = False

    def _init_seq(self, seq: int) -> None:
        self.base_seq = self.max_seq = seq
        self.bad_seq = RTP_SEQ_MOD + 1
        self.cycles = self.received = self.expected_prior = self.received_prior = 0

    def update(self, seq: int, rtp_timestamp: int, arrival: float) -> bool:
        """Count one packet (A.1 ``update_seq``); False when it is rejected as a sequence jump."""
        if not self._started:
            self._init_seq(seq)
            self._started = True
        udelta = (seq - self.max_seq) % RTP_SEQ_MOD
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += RTP_SEQ_MOD  # "Sequence number wrapped - count another 64K cycle."
            self.max_seq = seq
        elif udelta <= RTP_SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                self._init_seq(seq)  # two sequential packets after a jump: the source restarted
            else:
                self.bad_seq = (seq + 1) % RTP_SEQ_MOD
                return False
        # else: a duplicate or reordered packet, counted as received.
        self.received += 1
        self._update_jitter(rtp_timestamp, arrival)
        return True

    def _update_jitter(self, rtp_timestamp: int, arrival: float) -> None:
        # A.8: transit = arrival - r->ts (in timestamp units); J += (|D| - J) / 16.
        transit = (int(arrival * self.clock_rate) - rtp_timestamp) % (1 << 32)
        if self.transit is not None:
            d = abs((transit - self.transit + (1 << 31)) % (1 << 32) - (1 << 31))
            self._jitter += (d - self._jitter) / 16
        self.transit = transit

    def sender_report_received(self, ntp_timestamp: int, now: float) -> None:
        """Remember an SR for the LSR/DLSR fields of our next report."""
        self.lsr = ntp_middle(ntp_timestamp)
        self.sr_received_at = now

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self._started else 0

    @property
    def cumulative_lost(self) -> int:
        """A.3 ``lost``, clamped to the signed 24-bit field (negative when duplicates arrive)."""
        return max(-0x800000, min(0x7FFFFF, self.expected - self.received))

    @property
    def jitter(self) -> int:
        """Interarrival jitter in timestamp units."""
        return int(self._jitter)

    def report_block(self, ssrc: int, now: float) -> ReportBlock:
        """A reception report for ``ssrc``; starts the next fraction-lost interval (A.3)."""
        expected_interval = self.expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior, self.received_prior = self.expected, self.received
        lost_interval = expected_interval - received_interval
        fraction = 0 if expected_interval == 0 or lost_interval <= 0 else (lost_interval << 8) // expected_interval
        dlsr = 0 if self.sr_received_at is None else int((now - self.sr_received_at) * 65536)
        return ReportBlock(
            ssrc=ssrc,
            fraction_lost=min(fraction, 255),
            cumulative_lost=self.cumulative_lost,
            highest_seq=self.extended_max & 0xFFFFFFFF,
            jitter=self.jitter,
            lsr=self.lsr,
            dlsr=dlsr & 0xFFFFFFFF,
        )
