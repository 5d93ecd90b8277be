"""RTP packet parse/serialise (RFC 3550 §5.1) and G.711 codecs."""

from __future__ import annotations

import math
import struct
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.rtp import Codec, CodecError, RtpExtension, RtpPacket, RtpPacketError, g711, is_rtcp

u32 = st.integers(0, 2**32 - 1)
packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence_number=st.integers(0, 65535),
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=200),
    marker=st.booleans(),
    csrc=st.lists(u32, max_size=15).map(tuple),
    extension=st.none()
    | st.builds(
        RtpExtension, profile=st.integers(0, 65535), data=st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4])
    ),
    padding=st.integers(0, 255),
)


@given(packets)
def test_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(packet.serialize()) == packet


@given(st.binary(max_size=120))
def test_garbage_is_a_packet_or_rtp_error(data: bytes) -> None:
    try:
        packet = RtpPacket.parse(data)
    except RtpPacketError:
        return
    assert packet.version == 2


@given(st.binary(min_size=12, max_size=80))
def test_garbage_with_version_two_is_a_packet_or_rtp_error(data: bytes) -> None:
    try:
        RtpPacket.parse(bytes([0x80 | (data[0] & 0x3F)]) + data[1:])
    except RtpPacketError:
        pass


def test_known_bytes() -> None:
    data = bytes.fromhex("80 88 e6fd 000000f0 dee0ee8f") + b"\xd5" * 4
    packet = RtpPacket.parse(data)
    assert (packet.payload_type, packet.marker, packet.sequence_number, packet.timestamp) == (8, True, 59133, 240)
    assert packet.ssrc == 0xDEE0EE8F and packet.payload == b"\xd5" * 4
    assert packet.serialize() == data


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80" * 11,
        bytes.fromhex("40000000000000000000000000"),  # version 1
        bytes.fromhex("a0000000000000000000000000"),  # padding count 0
        bytes.fromhex("a00000000000000000000000ff"),  # padding longer than the packet
        bytes.fromhex("83000000000000000000000000"),  # 3 CSRCs announced, none present
        bytes.fromhex("9000000000000000000000000001ffff"),  # extension runs past the end
    ],
)
def test_invalid_packets(data: bytes) -> None:
    with pytest.raises(RtpPacketError):
        RtpPacket.parse(data)


def test_field_validation() -> None:
    with pytest.raises(RtpPacketError):
        RtpPacket(payload_type=128, sequence_number=0, timestamp=0, ssrc=0)
    with pytest.raises(RtpPacketError):
        RtpPacket(payload_type=0, sequence_number=65536, timestamp=0, ssrc=0)
    with pytest.raises(RtpPacketError):
        RtpExtension(profile=1, data=b"abc")


def test_rtcp_demux() -> None:
    assert is_rtcp(bytes([0x80, 200]))
    assert not is_rtcp(bytes([0x80, 0x08])) and not is_rtcp(bytes([0x80, 0x80 | 101]))


def _sine(n: int = 160, amplitude: int = 8000) -> bytes:
    return struct.pack(f"<{n}h", *(int(amplitude * math.sin(2 * math.pi * 440 * i / 8000)) for i in range(n)))


@pytest.mark.parametrize("codec", list(Codec))
def test_g711_round_trip_is_close(codec: Codec) -> None:
    pcm = _sine()
    encoded = g711.encode(codec, pcm)
    assert len(encoded) == 160
    decoded = struct.unpack("<160h", g711.decode(codec, encoded))
    original = struct.unpack("<160h", pcm)
    # G.711 is logarithmic: error within ~1/16 of the magnitude (plus a small floor).
    assert all(abs(a - b) <= abs(a) / 16 + 16 for a, b in zip(original, decoded, strict=True))


@given(st.binary(max_size=200))
def test_g711_decode_encode_is_identity_on_codes(data: bytes) -> None:
    # Every G.711 code decodes to a value that encodes back to an equivalent code.
    for codec in Codec:
        again = g711.encode(codec, g711.decode(codec, data))
        assert g711.decode(codec, again) == g711.decode(codec, data)


def test_transcoding_keeps_the_signal() -> None:
    ulaw = g711.encode_ulaw(_sine())
    alaw = g711.transcode(ulaw, Codec.PCMU, Codec.PCMA)
    assert alaw == g711.ulaw_to_alaw(ulaw)
    back = struct.unpack("<160h", g711.decode_alaw(alaw))
    direct = struct.unpack("<160h", g711.decode_ulaw(ulaw))
    assert all(abs(a - b) <= abs(a) / 16 + 16 for a, b in zip(direct, back, strict=True))
    assert g711.transcode(alaw, Codec.PCMA, Codec.PCMA) == alaw
    assert g711.alaw_to_ulaw(alaw) == g711.transcode(alaw, Codec.PCMA, Codec.PCMU)


def test_odd_pcm_is_a_codec_error() -> None:
    with pytest.raises(CodecError):
        g711.encode(Codec.PCMU, b"\x00\x01\x02")


def test_import_emits_no_deprecation_warning() -> None:
    code = "import sip.rtp.g711"
    result = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", code], capture_output=True)
    assert result.returncode == 0, result.stderr.decode()
