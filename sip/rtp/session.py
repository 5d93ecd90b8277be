"""A sans-I/O RTP/RTCP session for one audio stream (RFC 3550, RFC 3551 G.711, RFC 4733).

Shape (aioquic): :meth:`RtpSession.receive_datagram` takes bytes, the source address and
``now``; :meth:`RtpSession.datagrams_to_send` returns ``(bytes, addr)`` pairs;
:meth:`RtpSession.next_event` yields typed events; :meth:`RtpSession.get_timer` /
:meth:`RtpSession.handle_timer` drive the RTP timeout, RTCP reports and paced DTMF.

Symmetric RTP (RFC 4961 practice, needed for NAT'd softphones): the SDP address is only a
first guess. The session *latches* onto the source of the first valid RTP packet and sends
there; afterwards it re-latches only when packets from another address carry a different
SSRC (a new stream, e.g. after a re-INVITE), and drops same-SSRC packets from elsewhere.
RTCP goes to the address RTCP came from, else to the RTP host and port + 1 (RFC 3550 §11).

Received audio is decoded by its *actual* payload type (PCMU or PCMA), since some phones
send μ-law after negotiating A-law. Packets pass a reordering :class:`JitterBuffer`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NewType

import structlog

from sip.ids import random_bits
from sip.rtp import g711
from sip.rtp.dtmf import DtmfFrame, DtmfReceiver, digit_frames
from sip.rtp.errors import DtmfError, RtcpPacketError, RtpPacketError
from sip.rtp.jitter import JitterBuffer
from sip.rtp.packet import RtpPacket, is_rtcp
from sip.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReceptionStats,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    parse_compound,
    serialize_compound,
)

if TYPE_CHECKING:
    from sip.offer_answer import MediaParameters

__all__ = [
    "Addr", "AudioReceived", "DtmfReceived", "PeerAddressLearned", "RtcpReceived", "RtpEvent", "RtpSession",
    "SessionConfig", "SessionStats", "Ssrc", "SsrcChanged", "StreamTimedOut"
]

log = structlog.get_logger(__name__)

Ssrc = NewType("Ssrc", int)
Addr = tuple[str, int]
CLOCK_RATE = 8000
NTP_EPOCH_OFFSET = 2208988800  # seconds from 1900-01-01 (NTP) to 1970-01-01 (Unix)


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpEvent:
    """Base of every event an :class:`RtpSession` emits; ``now`` is the time passed in."""

    now: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioReceived(RtpEvent):
    """One audio packet in sequence order; ``pcm`` is 16-bit linear PCM for G.711, else None."""

    payload: bytes
    pcm: bytes | None
    payload_type: int
    timestamp: int
    sequence_number: int
    ssrc: Ssrc
    marker: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DtmfReceived(RtpEvent):
    """One RFC 4733 key press (a whole event, reported once); ``duration`` in seconds."""

    digit: str
    duration: float


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamTimedOut(RtpEvent):
    """No RTP for ``silence`` seconds (reported once until packets flow again)."""

    silence: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SsrcChanged(RtpEvent):
    """The peer's SSRC changed: a new source; statistics and buffers restarted."""

    old: Ssrc
    new: Ssrc


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerAddressLearned(RtpEvent):
    """Symmetric RTP latched onto ``addr`` (``previous`` is the address we sent to before)."""

    addr: Addr
    previous: Addr | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RtcpReceived(RtpEvent):
    """A compound RTCP packet from the peer (SR/RR/SDES/BYE...)."""

    packets: tuple[RtcpPacket, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionConfig:
    """Stream parameters, usually from :class:`sip.offer_answer.MediaParameters` (see :meth:`from_media`)."""

    codec: g711.Codec = g711.Codec.PCMU
    payload_type: int = 0
    telephone_event_pt: int | None = 101
    ptime: float = 0.02
    timeout: float | None = 30.0  # seconds without RTP before StreamTimedOut; None disables
    rtcp_interval: float | None = 5.0  # RFC 3550 §6.2 minimum; None disables our reports
    jitter_depth: int = 3
    symmetric: bool = True
    cname: str = "cti@localhost"
    wallclock_offset: float = 0.0  # add to ``now`` to get Unix time (for SR NTP timestamps)

    @classmethod
    def from_media(cls, params: MediaParameters, **overrides: Any) -> SessionConfig:
        """The config for a negotiated stream; ``overrides`` set the other fields (timeout, ...)."""
        base = cls(
            codec=params.codec,
            payload_type=params.payload_type,
            telephone_event_pt=params.telephone_event_pt,
            ptime=params.ptime / 1000,
        )
        return replace(base, **overrides)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionStats:
    """A snapshot of the counters (RFC 3550 A.3 loss, A.8 jitter in timestamp units)."""

    packets_received: int
    packets_sent: int
    octets_sent: int
    expected: int
    cumulative_lost: int
    jitter: int
    late: int
    duplicates: int
    rejected: int


class RtpSession:
    """One RTP stream: symmetric RTP, SSRC tracking, stats, DTMF, RTCP, timeout."""

    def __init__(
        self,
        config: SessionConfig,
        *,
        now: float,
        remote: Addr | None = None,
        ssrc: int | None = None,
        initial_seq: int | None = None,
        initial_timestamp: int | None = None,
    ) -> None:
        self.config = config
        self.ssrc = Ssrc(random_bits(32) if ssrc is None else ssrc)
        self.remote = remote
        self.remote_rtcp: Addr | None = None
        self.remote_ssrc: Ssrc | None = None
        self._latched = False
        self._seq = random_bits(16) if initial_seq is None else initial_seq
        self._ts = random_bits(32) if initial_timestamp is None else initial_timestamp
        self._last_sent_at: float | None = None
        self._last_samples = 0
        self._last_rx = now
        self._timed_out = False
        self._next_rtcp = None if config.rtcp_interval is None else now + config.rtcp_interval
        # Lists, not deques: they hold an item or two at a time, and an empty deque costs 600 bytes a session.
        self._events: list[RtpEvent] = []
        self._out: list[tuple[bytes, Addr]] = []
        self._dtmf_out: list[tuple[float, int, DtmfFrame]] = []
        self._stats = ReceptionStats(CLOCK_RATE)
        self._jitter: JitterBuffer[RtpPacket] = JitterBuffer(depth=config.jitter_depth)
        self._dtmf_in = DtmfReceiver(CLOCK_RATE)
        self.packets_sent = self.octets_sent = self.rejected = 0

    # --- receiving ---------------------------------------------------------------------

    def receive_datagram(self, data: bytes, addr: Addr, now: float) -> None:
        """Handle one datagram from ``addr`` (RTP or RTCP, told apart per RFC 5761 §4)."""
        if is_rtcp(data):
            self._receive_rtcp(data, addr, now)
            return
        try:
            packet = RtpPacket.parse(data)
        except RtpPacketError as exc:
            self.rejected += 1
            log.debug("rtp.packet.rejected", reason=str(exc), addr=addr)
            return
        if not self._accept_source(packet, addr, now):
            self.rejected += 1
            return
        self._last_rx = now
        self._timed_out = False
        self._stats.update(packet.sequence_number, packet.timestamp, now)
        if packet.payload_type == self.config.telephone_event_pt:
            try:
                digits = self._dtmf_in.receive(packet.timestamp, packet.payload)
            except DtmfError:
                self.rejected += 1
                return
            for d in digits:
                log.info("rtp.dtmf.received", digit=d.digit, duration=d.duration)
                self._events.append(DtmfReceived(now=now, digit=d.digit, duration=d.duration))
            return
        self._jitter.push(packet.sequence_number, packet)
        while (ready := self._jitter.pop()) is not None:
            self._emit_audio(ready, now)

    def _accept_source(self, packet: RtpPacket, addr: Addr, now: float) -> bool:
        ssrc = Ssrc(packet.ssrc)
        if self.config.symmetric and addr != self.remote and (not self._latched or ssrc != self.remote_ssrc):
            log.info("rtp.peer_address.learned", addr=addr, previous=self.remote)
            self._events.append(PeerAddressLearned(now=now, addr=addr, previous=self.remote))
            self.remote, self._latched = addr, True
        elif self.config.symmetric and addr != self.remote:
            return False  # same SSRC from a second address: not our peer (RTP latching)
        self._latched = self._latched or self.config.symmetric
        if self.remote_ssrc is not None and ssrc != self.remote_ssrc:
            log.info("rtp.ssrc.changed", old=self.remote_ssrc, new=ssrc)
            self._flush(now)
            self._events.append(SsrcChanged(now=now, old=self.remote_ssrc, new=ssrc))
            self._stats = ReceptionStats(CLOCK_RATE)
            self._jitter = JitterBuffer(depth=self.config.jitter_depth)
            self._dtmf_in = DtmfReceiver(CLOCK_RATE)
        self.remote_ssrc = ssrc
        return True

    def _emit_audio(self, packet: RtpPacket, now: float) -> None:
        pcm = None
        if packet.payload_type in (g711.Codec.PCMU, g711.Codec.PCMA):
            pcm = g711.decode(g711.Codec(packet.payload_type), packet.payload)
        self._events.append(
            AudioReceived(
                now=now,
                payload=packet.payload,
                pcm=pcm,
                payload_type=packet.payload_type,
                timestamp=packet.timestamp,
                sequence_number=packet.sequence_number,
                ssrc=Ssrc(packet.ssrc),
                marker=packet.marker,
            )
        )

    def _flush(self, now: float) -> None:
        """Emit what the jitter buffer holds and a DTMF event whose end packets never came."""
        for packet in self._jitter.drain():
            self._emit_audio(packet, now)
        self._events.extend(DtmfReceived(now=now, digit=d.digit, duration=d.duration) for d in self._dtmf_in.flush())

    def _receive_rtcp(self, data: bytes, addr: Addr, now: float) -> None:
        try:
            packets = parse_compound(data)
        except RtcpPacketError as exc:
            self.rejected += 1
            log.debug("rtp.rtcp.rejected", reason=str(exc), addr=addr)
            return
        self.remote_rtcp = addr
        for p in packets:
            if isinstance(p, SenderReport):
                self._stats.sender_report_received(p.ntp_timestamp, now)
        self._events.append(RtcpReceived(now=now, packets=tuple(packets)))

    def relayed(self, now: float) -> None:
        """A packet of this stream was received and relayed elsewhere (not given to this session).

        Keeps the RTP timeout (:class:`StreamTimedOut`) in step while a relay takes the stream.
        """
        self._last_rx = now
        self._timed_out = False

    def next_event(self) -> RtpEvent | None:
        """The next pending event, or None."""
        return self._events.pop(0) if self._events else None

    # --- sending -----------------------------------------------------------------------

    def send_audio(self, payload: bytes, now: float, *, payload_type: int | None = None) -> None:
        """Queue one encoded frame (G.711: one byte per sample); sets seq, timestamp and marker.

        A frame after a pause longer than two packet times starts a talkspurt: marker set
        (RFC 3551 §4.1) and the timestamp advanced by the wall time that passed.
        """
        samples = len(payload)
        marker = self._last_sent_at is None
        if self._last_sent_at is not None:
            gap = now - self._last_sent_at
            if gap > 2 * self.config.ptime:
                marker = True
                self._ts += max(self._last_samples, round(gap * CLOCK_RATE))
            else:
                self._ts += self._last_samples
        self._last_sent_at, self._last_samples = now, samples
        pt = self.config.payload_type if payload_type is None else payload_type
        self._queue(pt, payload, marker, self._ts & 0xFFFFFFFF)

    def send_pcm(self, pcm: bytes, now: float) -> None:
        """Encode 16-bit linear PCM with the negotiated codec and queue it.

        Raises:
            CodecError: ``pcm`` has an odd length.
        """
        self.send_audio(g711.encode(self.config.codec, pcm), now)

    def send_dtmf(self, digit: str, now: float, *, duration: float = 0.1) -> None:
        """Schedule an RFC 4733 event for ``digit`` starting now, paced by :meth:`get_timer`.

        Raises:
            DtmfError: no telephone-event PT negotiated, or not a DTMF digit.
        """
        if self.config.telephone_event_pt is None:
            raise DtmfError("telephone-event was not negotiated")
        frames = digit_frames(digit, duration=duration, packet_time=self.config.ptime)
        ts = (self._ts + (self._last_samples if self._last_sent_at is not None else 0)) & 0xFFFFFFFF
        self._dtmf_out.extend((now + f.offset, ts, f) for f in frames)
        self._release_dtmf(now)

    def _release_dtmf(self, now: float) -> None:
        pt = self.config.telephone_event_pt
        while self._dtmf_out and self._dtmf_out[0][0] <= now + 1e-9 and pt is not None:
            _, ts, frame = self._dtmf_out.pop(0)
            self._queue(pt, frame.payload, frame.marker, ts)

    def _queue(self, pt: int, payload: bytes, marker: bool, ts: int) -> None:
        packet = RtpPacket(
            payload_type=pt, sequence_number=self._seq, timestamp=ts, ssrc=self.ssrc, payload=payload, marker=marker
        )
        self._seq = (self._seq + 1) & 0xFFFF
        if self.remote is None:
            return  # nowhere to send yet (no SDP address, nothing latched)
        self._out.append((packet.serialize(), self.remote))
        self.packets_sent += 1
        self.octets_sent += len(payload)

    def stream_position(self, now: float) -> tuple[int, int]:
        """``(next sequence number, next timestamp)`` of the stream we send, for a relay taking it over.

        The timestamp is advanced by the time since our last packet, as :meth:`send_audio` would.
        """
        ts = self._ts
        if self._last_sent_at is not None:
            ts += max(self._last_samples, round((now - self._last_sent_at) * CLOCK_RATE))
        return self._seq, ts & 0xFFFFFFFF

    def continue_stream(self, next_seq: int, last_timestamp: int, last_sent_at: float | None, sent: int) -> None:
        """Take the outgoing stream back from a relay that sent ``sent`` packets with our SSRC.

        The next packet gets ``next_seq`` and a timestamp following ``last_timestamp`` (RFC 3550
        §5.1: one stream per SSRC, sequence numbers "increment by one" per packet).
        """
        self._seq = next_seq & 0xFFFF
        if last_sent_at is not None:
            self._ts, self._last_sent_at, self._last_samples = last_timestamp, last_sent_at, 160
        self.packets_sent += sent

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Addr]]:
        """Everything due by ``now`` as ``(bytes, addr)``; RTCP goes to the RTCP address."""
        self._release_dtmf(now)
        out, self._out = self._out, []
        return out

    def bye(self, now: float) -> None:
        """Queue a final RTCP report with BYE (RFC 3550 §6.6) and flush what is buffered."""
        self._flush(now)
        self._queue_rtcp(now, Bye(sources=(self.ssrc,)))

    # --- time --------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next run, or None."""
        times = [self._next_rtcp, self._dtmf_out[0][0] if self._dtmf_out else None]
        if self.config.timeout is not None and not self._timed_out:
            times.append(self._last_rx + self.config.timeout)
        return min((t for t in times if t is not None), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire whatever is due: RTP timeout, RTCP report, DTMF pacing."""
        timeout = self.config.timeout
        if timeout is not None and not self._timed_out and now >= self._last_rx + timeout:
            self._timed_out = True
            self._flush(now)
            log.warning("rtp.stream.timed_out", silence=now - self._last_rx, remote=self.remote)
            self._events.append(StreamTimedOut(now=now, silence=now - self._last_rx))
        if self._next_rtcp is not None and now >= self._next_rtcp and self.config.rtcp_interval is not None:
            self._next_rtcp = now + self.config.rtcp_interval
            self._queue_rtcp(now)
        self._release_dtmf(now)

    def _queue_rtcp(self, now: float, *extra: RtcpPacket) -> None:
        blocks = () if self.remote_ssrc is None else (self._stats.report_block(self.remote_ssrc, now),)
        report: RtcpPacket
        if self.packets_sent:
            wall = now + self.config.wallclock_offset + NTP_EPOCH_OFFSET
            ntp = (int(wall) << 32 | int((wall % 1) * (1 << 32))) & (2**64 - 1)
            report = SenderReport(
                ssrc=self.ssrc,
                ntp_timestamp=ntp,
                rtp_timestamp=self._ts & 0xFFFFFFFF,
                packet_count=self.packets_sent & 0xFFFFFFFF,
                octet_count=self.octets_sent & 0xFFFFFFFF,
                reports=blocks,
            )
        else:
            report = ReceiverReport(ssrc=self.ssrc, reports=blocks)
        sdes = SourceDescription(chunks=(SdesChunk(ssrc=self.ssrc, items=((1, self.config.cname.encode()[:255]),)),))
        target = self.remote_rtcp or (self.remote and (self.remote[0], self.remote[1] + 1))
        if target:
            self._out.append((serialize_compound([report, sdes, *extra]), target))

    @property
    def stats(self) -> SessionStats:
        s = self._stats
        return SessionStats(
            packets_received=s.received,
            packets_sent=self.packets_sent,
            octets_sent=self.octets_sent,
            expected=s.expected,
            cumulative_lost=s.cumulative_lost,
            jitter=s.jitter,
            late=self._jitter.late,
            duplicates=self._jitter.duplicates,
            rejected=self.rejected,
        )
