"""Errors of the RTP layer (RFC 3550 packets, RTCP, RFC 4733 events, media ports).

Exception tree::

    RtpError                      base of everything sip.rtp raises
    ├── RtpPacketError            bytes that are not a valid RTP packet (RFC 3550 §5.1)
    ├── RtcpPacketError           bytes that are not a valid RTCP packet (RFC 3550 §6.4-§6.6)
    ├── DtmfError                 a bad telephone-event payload or digit (RFC 4733 §2.3)
    ├── CodecError                G.711 input that cannot be encoded/decoded (odd PCM length)
    └── PortsExhaustedError       no free even port left in the configured media range

Every error carries a stable ``code`` string for API-facing messages. Parsers translate
``struct.error``/``IndexError``/``ValueError`` at the boundary with ``raise ... from exc``
and never leak them. SDP errors live in :mod:`sip.sdp` (they carry a SIP ``status_hint``).
"""

from __future__ import annotations


class RtpError(Exception):
    """Base class of every error raised by ``sip.rtp``."""

    code = "rtp_error"


class RtpPacketError(RtpError):
    """The bytes are not a valid RTP packet."""

    code = "rtp_packet_invalid"


class RtcpPacketError(RtpError):
    """The bytes are not a valid RTCP (compound) packet."""

    code = "rtcp_packet_invalid"


class DtmfError(RtpError):
    """A telephone-event payload or digit is invalid."""

    code = "rtp_dtmf_invalid"


class CodecError(RtpError):
    """G.711 encoding or decoding was given unusable input."""

    code = "rtp_codec_invalid"


class PortsExhaustedError(RtpError):
    """Every RTP/RTCP port pair of the configured range is in use."""

    code = "rtp_ports_exhausted"
