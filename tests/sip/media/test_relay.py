"""Relay core: seq/ts/SSRC rewriting, PT mapping, transcoding, RFC 4733 events, tap."""

from __future__ import annotations

from typing import Any

import pytest

from sip.media.events import DtmfReceived, LegSide
from sip.media.frames import split_frames
from sip.media.recorder import Channel
from sip.media.relay import DtmfMode, LegConfig, Relay
from sip.rtp.g711 import Codec, decode, encode
from sip.rtp.packet import RtpExtension, RtpPacket

from .audio_helpers import goertzel, samples, sine


def make(codec_a: Codec = Codec.PCMU, codec_b: Codec = Codec.PCMU, **kw: Any) -> Relay:
    a = LegConfig(
        codec=codec_a, event_pt=101, channel=Channel.CALLER, ssrc=0xAAAA0001, initial_seq=1000, initial_ts=50_000
    )
    b = LegConfig(
        codec=codec_b, event_pt=96, channel=Channel.AGENT, ssrc=0xBBBB0002, initial_seq=65534, initial_ts=0xFFFFFF00
    )
    return Relay(a, b, **kw)


def rtp(seq: int, ts: int, payload: bytes = b"\xff" * 160, *, pt: int = 0, ssrc: int = 0x1234, **kw: Any) -> bytes:
    packet = RtpPacket(payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload, **kw)
    return packet.serialize()


def fwd(relay: Relay, side: LegSide, data: bytes, now: float = 0.0) -> RtpPacket:
    out = relay.forward(side, data, now)
    assert out is not None
    return RtpPacket.parse(out)


def test_seq_ts_ssrc_rewritten_per_outgoing_leg_with_wrap() -> None:
    relay = make()
    outs = [fwd(relay, LegSide.A, rtp(7 + k, 3200 + 160 * k), k * 0.02) for k in range(4)]
    assert [p.ssrc for p in outs] == [0xBBBB0002] * 4
    assert [p.sequence_number for p in outs] == [65534, 65535, 0, 1]
    assert [p.timestamp for p in outs] == [0xFFFFFF00, 0xFFFFFFA0 % 2**32, 0x40, 0xE0]
    assert outs[0].marker and not outs[1].marker
    back = fwd(relay, LegSide.B, rtp(500, 9, ssrc=0x99), 0.0)
    assert (back.ssrc, back.sequence_number, back.timestamp) == (0xAAAA0001, 1000, 50_000)


def test_loss_and_reorder_are_preserved_not_hidden() -> None:
    relay = make()
    seqs = [fwd(relay, LegSide.A, rtp(s, s * 160), 0.0).sequence_number for s in (10, 12, 11)]
    assert seqs == [65534, 0, 65535]


def test_new_source_ssrc_continues_the_outgoing_stream() -> None:
    relay = make()
    for k in range(3):
        relay.forward(LegSide.A, rtp(100 + k, 160 * k), k * 0.02)
    # the caller's side restarts with another SSRC, random seq/ts, 1 s later
    out = fwd(relay, LegSide.A, rtp(40000, 777, ssrc=0x5555), 1.04)
    assert out.ssrc == 0xBBBB0002
    assert out.sequence_number == (65534 + 3) & 0xFFFF
    assert out.timestamp == (0xFFFFFF00 + 2 * 160 + 8000) & 0xFFFFFFFF
    assert out.marker


def test_same_codec_passes_payload_untouched() -> None:
    relay = make()
    payload = encode(Codec.PCMU, sine(700, 0.02))
    out = fwd(relay, LegSide.A, rtp(1, 0, payload), 0.0)
    assert out.payload == payload and out.payload_type == 0


def test_transcoding_pcmu_to_pcma_matches_source_audio() -> None:
    relay = make(Codec.PCMU, Codec.PCMA)
    source = sine(1000, 0.2, amplitude=0.5)
    received = b""
    for k, frame in enumerate(split_frames(source)):
        out = fwd(relay, LegSide.A, rtp(k, 160 * k, encode(Codec.PCMU, frame)), 0.0)
        assert out.payload_type == 8 and len(out.payload) == 160
        received += decode(Codec.PCMA, out.payload)
    assert goertzel(received, 1000) == pytest.approx(0.5, abs=0.02)
    err = max(abs(x - y) for x, y in zip(samples(received), samples(source), strict=True))
    assert err < 0.03 * 32768  # two companding steps: a few % of full scale at most
    back = fwd(relay, LegSide.B, rtp(1, 0, encode(Codec.PCMA, source[:320]), pt=8), 0.0)
    assert back.payload_type == 0 and goertzel(decode(Codec.PCMU, back.payload), 1000) > 0.3


def test_csrc_extension_padding_are_stripped() -> None:
    relay = make()
    data = rtp(1, 0, b"\x7f" * 160, csrc=(1, 2), extension=RtpExtension(profile=0xBEDE, data=b"\0" * 8), padding=4)
    out = fwd(relay, LegSide.A, data, 0.0)
    assert out.payload == b"\x7f" * 160 and out.csrc == () and out.extension is None and out.padding == 0


def test_garbage_rtcp_and_unknown_pt_are_dropped() -> None:
    relay = make()
    assert relay.forward(LegSide.A, b"\x80\x00", 0.0) is None
    assert relay.forward(LegSide.A, b"\x40" + bytes(20), 0.0) is None  # version 1 with flags
    assert relay.forward(LegSide.A, bytes([0x80, 200]) + bytes(26), 0.0) is None  # RTCP SR, muxed
    assert relay.forward(LegSide.A, rtp(1, 0, pt=18), 0.0) is None  # G.729 not negotiated
    assert relay.forward(LegSide.A, rtp(1, 0, b"\x40", pt=13), 0.0) is not None  # comfort noise passes
    assert relay.stats[LegSide.A].dropped == 4


def dtmf(event: int, end: bool, duration: int) -> bytes:
    return bytes([event, 0x80 | 10 if end else 10]) + duration.to_bytes(2, "big")


def test_dtmf_passed_with_mapped_pt_and_surfaced_once() -> None:
    relay = make()
    relay.forward(LegSide.A, rtp(1, 0), 0.0)
    outs = []
    for i, (end, dur) in enumerate([(False, 160), (False, 320), (True, 480), (True, 480), (True, 480)]):
        outs.append(relay.forward(LegSide.A, rtp(2 + i, 160, dtmf(11, end, dur), pt=101), 0.1 + i * 0.02))
    parsed = [RtpPacket.parse(o or b"") for o in outs]
    assert {p.payload_type for p in parsed} == {96}
    assert {p.timestamp for p in parsed} == {(0xFFFFFF00 + 160) & 0xFFFFFFFF}  # same ts offset as audio
    assert relay.next_event() == DtmfReceived(at=0.14, side=LegSide.A, digit="#", duration=480)
    assert relay.next_event() is None


def test_dtmf_surface_mode_consumes_events() -> None:
    relay = make(dtmf=DtmfMode.SURFACE)
    assert relay.forward(LegSide.B, rtp(1, 0, dtmf(5, True, 800), pt=96), 2.0) is None
    assert relay.next_event() == DtmfReceived(at=2.0, side=LegSide.B, digit="5", duration=800)


def test_tap_collects_encoded_audio_per_channel() -> None:
    relay = make(Codec.PCMU, Codec.PCMA, tap=True)
    relay.forward(LegSide.A, rtp(1, 160), 0.5)
    relay.forward(LegSide.B, rtp(9, 320, b"\xd5" * 160, pt=8, ssrc=77), 0.52)
    relay.forward(LegSide.A, rtp(2, 320, dtmf(1, True, 160), pt=101), 0.54)  # events are not tapped
    taps = relay.drain_tap()
    assert [(t.channel, t.codec, t.ssrc, t.timestamp, t.at) for t in taps] == [
        (Channel.CALLER, Codec.PCMU, 0x1234, 160, 0.5),
        (Channel.AGENT, Codec.PCMA, 77, 320, 0.52),
    ]
    assert taps[1].payload == b"\xd5" * 160 and relay.drain_tap() == []
