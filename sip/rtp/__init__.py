"""RTP/RTCP: packets, jitter buffer, sessions (RFC 3550, RFC 4733)."""

from sip.rtp.errors import (
    CodecError,
    DtmfError,
    PortsExhaustedError,
    RtcpPacketError,
    RtpError,
    RtpPacketError,
)
from sip.rtp.g711 import Codec
from sip.rtp.packet import RtpExtension, RtpPacket, is_rtcp

__all__ = [
    "Codec",
    "CodecError",
    "DtmfError",
    "PortsExhaustedError",
    "RtcpPacketError",
    "RtpError",
    "RtpExtension",
    "RtpPacket",
    "RtpPacketError",
    "is_rtcp",
]
