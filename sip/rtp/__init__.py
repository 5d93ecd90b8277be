"""RTP/RTCP for G.711 audio: packets, RTCP and stats, jitter buffer, RFC 4733 DTMF, sessions.

Sans-I/O cores (:class:`RtpSession`, :class:`JitterBuffer`, :class:`DtmfReceiver`, parsers). The
asyncio adapter, :class:`RtpEndpoint`, lives in ``sip.rtp.aio``: import it from there. Importing
``sip.rtp`` imports no adapter. See ``docs/media.md``.
"""

from sip.rtp.dtmf import DtmfDigit, DtmfFrame, DtmfReceiver, TelephoneEvent, digit_frames
from sip.rtp.errors import (
    CodecError,
    DtmfError,
    PortsExhaustedError,
    RtcpPacketError,
    RtpError,
    RtpPacketError,
)
from sip.rtp.g711 import Codec
from sip.rtp.jitter import JitterBuffer, PushResult, SequenceUnwrapper
from sip.rtp.packet import RtpExtension, RtpPacket, is_rtcp
from sip.rtp.ports import PortAllocator
from sip.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReceptionStats,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    parse_compound,
    serialize_compound,
)
from sip.rtp.session import (
    Addr,
    AudioReceived,
    DtmfReceived,
    PeerAddressLearned,
    RtcpReceived,
    RtpEvent,
    RtpSession,
    SessionConfig,
    SessionStats,
    Ssrc,
    SsrcChanged,
    StreamTimedOut,
)
from sip.rtp.srtp import SrtpError, SrtpTransform

__all__ = [
    "Addr",
    "AudioReceived",
    "Bye",
    "Codec",
    "SrtpError",
    "SrtpTransform",
    "CodecError",
    "DtmfDigit",
    "DtmfError",
    "DtmfFrame",
    "DtmfReceived",
    "DtmfReceiver",
    "JitterBuffer",
    "PeerAddressLearned",
    "PortAllocator",
    "PortsExhaustedError",
    "PushResult",
    "ReceiverReport",
    "ReceptionStats",
    "ReportBlock",
    "RtcpPacket",
    "RtcpPacketError",
    "RtcpReceived",
    "RtpError",
    "RtpEvent",
    "RtpExtension",
    "RtpPacket",
    "RtpPacketError",
    "RtpSession",
    "SdesChunk",
    "SenderReport",
    "SequenceUnwrapper",
    "SessionConfig",
    "SessionStats",
    "SourceDescription",
    "Ssrc",
    "SsrcChanged",
    "StreamTimedOut",
    "TelephoneEvent",
    "UnknownRtcp",
    "digit_frames",
    "is_rtcp",
    "parse_compound",
    "serialize_compound",
]

