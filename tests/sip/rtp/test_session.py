"""The sans-I/O RTP session: time stepped by hand, two sessions joined over a fake link."""

from __future__ import annotations

import struct

import pytest

from sip import SessionDescription, build_offer, negotiate
from sip.rtp import (
    AudioReceived,
    Codec,
    DtmfError,
    DtmfReceived,
    PeerAddressLearned,
    RtcpReceived,
    RtpEvent,
    RtpPacket,
    RtpSession,
    SenderReport,
    SessionConfig,
    Ssrc,
    SsrcChanged,
    StreamTimedOut,
    parse_compound,
)

A = ("10.0.0.1", 4000)
B = ("10.0.0.2", 5000)
NAT_B = ("203.0.113.9", 61000)
FRAME = struct.pack("<160h", *([4000, -4000] * 80))


def events(session: RtpSession) -> list[RtpEvent]:
    out = []
    while (event := session.next_event()) is not None:
        out.append(event)
    return out


def transfer(sender: RtpSession, receiver: RtpSession, now: float, source: tuple[str, int]) -> int:
    datagrams = sender.datagrams_to_send(now)
    for data, _ in datagrams:
        receiver.receive_datagram(data, source, now)
    return len(datagrams)


def pair(**config: object) -> tuple[RtpSession, RtpSession]:
    cfg = SessionConfig(rtcp_interval=None, **config)  # type: ignore[arg-type]
    a = RtpSession(cfg, now=0.0, remote=B, ssrc=1, initial_seq=65530, initial_timestamp=1000)
    b = RtpSession(cfg, now=0.0, remote=A, ssrc=2, initial_seq=0, initial_timestamp=0)
    return a, b


def test_audio_flows_with_seq_wrap_and_marker_on_talkspurts() -> None:
    a, b = pair()
    now = 0.0
    for _ in range(10):
        a.send_pcm(FRAME, now)
        transfer(a, b, now, A)
        now += 0.02
    now += 1.0  # silence, then a new talkspurt
    a.send_pcm(FRAME, now)
    transfer(a, b, now, A)
    audio = [e for e in events(b) if isinstance(e, AudioReceived)]
    assert [e.sequence_number for e in audio] == [(65530 + i) % 65536 for i in range(11)]
    assert [e.marker for e in audio] == [True] + [False] * 9 + [True]
    assert [e.timestamp for e in audio[:3]] == [1000, 1160, 1320]
    assert audio[10].timestamp - audio[9].timestamp == round(1.02 * 8000)
    assert all(len(e.pcm or b"") == 320 for e in audio)
    assert b.stats.packets_received == 11 and b.stats.cumulative_lost == 0


def test_audio_is_decoded_by_its_actual_payload_type() -> None:
    a, b = pair()
    a.send_audio(bytes([0xD5]) * 160, 0.0, payload_type=8)
    transfer(a, b, 0.0, A)
    [event] = [e for e in events(b) if isinstance(e, AudioReceived)]
    assert event.payload_type == 8 and event.pcm == struct.pack("<h", 8) * 160


def test_symmetric_rtp_learns_the_natted_address_and_sends_there() -> None:
    a, b = pair()
    b.send_pcm(FRAME, 0.0)
    assert [addr for _, addr in b.datagrams_to_send(0.0)] == [A]
    a.send_pcm(FRAME, 0.0)
    transfer(a, b, 0.0, NAT_B)  # a is behind NAT: its packets come from elsewhere
    learned = [e for e in events(b) if isinstance(e, PeerAddressLearned)]
    assert learned == [PeerAddressLearned(now=0.0, addr=NAT_B, previous=A)]
    b.send_pcm(FRAME, 0.02)
    assert [addr for _, addr in b.datagrams_to_send(0.02)] == [NAT_B]
    # Same SSRC from a third address: not latched, dropped.
    a.send_pcm(FRAME, 0.02)
    transfer(a, b, 0.02, ("198.51.100.66", 1))
    assert not [e for e in events(b) if isinstance(e, AudioReceived)] and b.remote == NAT_B


def test_ssrc_change_is_reported_and_stats_restart() -> None:
    a, b = pair()
    a.send_pcm(FRAME, 0.0)
    transfer(a, b, 0.0, A)
    other = RtpSession(SessionConfig(rtcp_interval=None), now=0.0, remote=B, ssrc=99, initial_seq=500)
    other.send_pcm(FRAME, 0.02)
    transfer(other, b, 0.02, A)
    changed = [e for e in events(b) if isinstance(e, SsrcChanged)]
    assert changed == [SsrcChanged(now=0.02, old=Ssrc(1), new=Ssrc(99))]
    assert b.stats.packets_received == 1


def test_timeout_fires_once_and_rearms_when_packets_return() -> None:
    a, b = pair(timeout=2.0)
    assert b.get_timer() == 2.0
    b.handle_timer(1.0)
    assert not events(b)
    b.handle_timer(2.0)
    assert events(b) == [StreamTimedOut(now=2.0, silence=2.0)]
    assert b.get_timer() is None
    b.handle_timer(5.0)
    assert not events(b)
    a.send_pcm(FRAME, 5.0)
    transfer(a, b, 5.0, A)
    assert b.get_timer() == 7.0


def test_dtmf_send_is_paced_by_the_timer_and_received_once() -> None:
    a, b = pair()
    a.send_pcm(FRAME, 0.0)
    transfer(a, b, 0.0, A)
    a.send_dtmf("5", 0.02, duration=0.1)
    now, sent = 0.02, 0
    while (when := a.get_timer()) is not None and when < 1.0:
        now = when
        a.handle_timer(now)
        sent += transfer(a, b, now, A)
    sent += transfer(a, b, now, A)
    assert sent == 7  # start, 3 updates, 3 end packets
    digits = [e for e in events(b) if isinstance(e, DtmfReceived)]
    assert [(d.digit, d.duration) for d in digits] == [("5", 0.1)]


def test_dtmf_without_negotiation_is_an_error() -> None:
    a, _ = pair(telephone_event_pt=None)
    with pytest.raises(DtmfError):
        a.send_dtmf("1", 0.0)


def test_garbage_is_counted_not_raised() -> None:
    _, b = pair()
    for junk in (b"", b"\x00" * 40, b"\x80\xc8\x00\x09", bytes(range(256))):
        b.receive_datagram(junk, A, 0.0)
    assert b.stats.rejected == 4 and not events(b)


def test_rtcp_reports_go_to_port_plus_one_and_are_read() -> None:
    cfg = SessionConfig(rtcp_interval=5.0)
    a = RtpSession(cfg, now=0.0, remote=B, ssrc=1)
    b = RtpSession(cfg, now=0.0, remote=A, ssrc=2)
    a.send_pcm(FRAME, 0.0)
    transfer(a, b, 0.0, A)
    assert a.get_timer() == 5.0
    a.handle_timer(5.0)
    [(data, addr)] = a.datagrams_to_send(5.0)
    assert addr == (B[0], B[1] + 1)
    report = parse_compound(data)[0]
    assert isinstance(report, SenderReport) and report.packet_count == 1
    b.receive_datagram(data, (A[0], A[1] + 1), 5.0)
    assert any(isinstance(e, RtcpReceived) for e in events(b))
    assert b.remote_rtcp == (A[0], A[1] + 1)


def test_config_from_negotiated_media() -> None:
    offer = build_offer("10.0.0.1", 4000, [Codec.PCMA])
    media = negotiate(SessionDescription.parse(offer.serialize()), [Codec.PCMA], "10.0.0.2", 5000).media
    cfg = SessionConfig.from_media(media, timeout=5.0)
    assert (cfg.codec, cfg.payload_type, cfg.telephone_event_pt, cfg.ptime, cfg.timeout) == (
        Codec.PCMA,
        8,
        101,
        0.02,
        5.0,
    )
    session = RtpSession(cfg, now=0.0, remote=(media.remote_addr, media.remote_port), ssrc=3)
    session.send_pcm(FRAME, 0.0)
    [(data, addr)] = session.datagrams_to_send(0.0)
    assert addr == ("10.0.0.1", 4000) and RtpPacket.parse(data).payload_type == 8
