"""RTP data packets: parse and serialise (RFC 3550 §5.1, §5.3.1; RFC 5761 §4 for demux).

Fixed header (RFC 3550 §5.1)::

     0                   1                   2                   3
    |V=2|P|X|  CC   |M|     PT      |       sequence number         |
    |                           timestamp                           |
    |           synchronization source (SSRC) identifier            |
    |            contributing source (CSRC) identifiers             | (CC of them)
    | extension: profile-defined 16 bits | length in 32-bit words   | (if X)
    | payload ... | padding ... | pad count |                         (if P)

:func:`RtpPacket.parse` returns a packet or raises :class:`RtpPacketError`, never any
other exception, whatever the bytes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from sip.rtp.errors import RtpPacketError

__all__ = ["RTP_VERSION", "RtpExtension", "RtpPacket", "is_rtcp"]

RTP_VERSION = 2
_HEADER = struct.Struct("!BBHII")
_EXT_HEADER = struct.Struct("!HH")


def is_rtcp(data: bytes) -> bool:
    """Tell RTCP from RTP on a multiplexed port (RFC 5761 §4: RTCP packet types 192-223)."""
    return len(data) >= 2 and 192 <= data[1] <= 223


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpExtension:
    """The header extension (RFC 3550 §5.3.1): a 16-bit profile word and 32-bit-aligned data."""

    profile: int
    data: bytes = b""

    def __post_init__(self) -> None:
        if not 0 <= self.profile <= 0xFFFF:
            raise RtpPacketError(f"extension profile {self.profile} out of range")
        if len(self.data) % 4 or len(self.data) > 4 * 0xFFFF:
            raise RtpPacketError("extension data must be a multiple of 4 bytes, at most 262140")


@dataclass(frozen=True, slots=True, kw_only=True)
class RtpPacket:
    """One RTP packet. ``padding`` is the number of padding bytes (0 = P bit clear)."""

    payload_type: int
    sequence_number: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: RtpExtension | None = None
    padding: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise RtpPacketError(f"payload type {self.payload_type} out of range 0-127")
        if not 0 <= self.sequence_number <= 0xFFFF:
            raise RtpPacketError(f"sequence number {self.sequence_number} out of range")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise RtpPacketError(f"timestamp {self.timestamp} out of range")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpPacketError(f"ssrc {self.ssrc} out of range")
        if len(self.csrc) > 15 or any(not 0 <= c <= 0xFFFFFFFF for c in self.csrc):
            raise RtpPacketError("at most 15 CSRCs of 32 bits each")
        if not 0 <= self.padding <= 255:
            raise RtpPacketError(f"padding {self.padding} out of range 0-255")

    @property
    def version(self) -> int:
        """Always 2 (RFC 3550 §5.1: "The version defined by this specification is two (2)")."""
        return RTP_VERSION

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet.

        Raises:
            RtpPacketError: the bytes are not a valid RTP version 2 packet.
        """
        try:
            return cls._parse(bytes(data))
        except RtpPacketError:
            raise
        except (struct.error, IndexError, ValueError, TypeError) as exc:
            raise RtpPacketError(f"malformed RTP packet: {exc}") from exc

    @classmethod
    def _parse(cls, data: bytes) -> RtpPacket:
        if len(data) < _HEADER.size:
            raise RtpPacketError(f"RTP packet of {len(data)} bytes is shorter than the 12-byte header")
        first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpPacketError(f"RTP version {first >> 6} is not 2")
        cc = first & 0x0F
        offset = _HEADER.size
        end = len(data)
        if first & 0x20:
            padding = data[-1]
            # RFC 3550 §5.1: the last octet of the padding "contains a count of how many padding
            # octets should be ignored, including itself".
            if padding == 0:
                raise RtpPacketError("padding bit set but pad count is 0")
            end -= padding
        else:
            padding = 0
        if offset + 4 * cc > end:
            raise RtpPacketError("packet too short for its CSRC list")
        csrc = struct.unpack_from(f"!{cc}I", data, offset)
        offset += 4 * cc
        extension = None
        if first & 0x10:
            if offset + _EXT_HEADER.size > end:
                raise RtpPacketError("packet too short for its header extension")
            profile, words = _EXT_HEADER.unpack_from(data, offset)
            offset += _EXT_HEADER.size
            if offset + 4 * words > end:
                raise RtpPacketError("header extension runs past the end of the packet")
            extension = RtpExtension(profile=profile, data=data[offset : offset + 4 * words])
            offset += 4 * words
        if offset > end:
            raise RtpPacketError("padding overlaps the header")
        return cls(
            payload_type=second & 0x7F,
            marker=bool(second & 0x80),
            sequence_number=seq,
            timestamp=ts,
            ssrc=ssrc,
            csrc=tuple(csrc),
            extension=extension,
            payload=data[offset:end],
            padding=padding,
        )

    def serialize(self) -> bytes:
        """The packet as bytes (padding bytes are zero except the final count)."""
        first = (RTP_VERSION << 6) | len(self.csrc)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = self.payload_type | (0x80 if self.marker else 0)
        parts = [
            _HEADER.pack(first, second, self.sequence_number, self.timestamp, self.ssrc),
            struct.pack(f"!{len(self.csrc)}I", *self.csrc),
        ]
        if self.extension is not None:
            parts.append(_EXT_HEADER.pack(self.extension.profile, len(self.extension.data) // 4))
            parts.append(self.extension.data)
        parts.append(self.payload)
        if self.padding:
            parts.append(bytes(self.padding - 1) + bytes((self.padding,)))
        return b"".join(parts)
