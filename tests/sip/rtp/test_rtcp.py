"""RTCP packets and receiver statistics (RFC 3550 §6.4-6.6, A.1, A.3, A.8)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.rtp import (
    Bye,
    ReceiverReport,
    ReceptionStats,
    ReportBlock,
    RtcpPacketError,
    SdesChunk,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    parse_compound,
    serialize_compound,
)

u32 = st.integers(0, 2**32 - 1)
blocks = st.builds(
    ReportBlock,
    ssrc=u32,
    fraction_lost=st.integers(0, 255),
    cumulative_lost=st.integers(-(2**23), 2**23 - 1),
    highest_seq=u32,
    jitter=u32,
    lsr=u32,
    dlsr=u32,
)
block_lists = st.lists(blocks, max_size=3).map(tuple)
rtcp_packets = st.one_of(
    st.builds(
        SenderReport,
        ssrc=u32,
        ntp_timestamp=st.integers(0, 2**64 - 1),
        rtp_timestamp=u32,
        packet_count=u32,
        octet_count=u32,
        reports=block_lists,
    ),
    st.builds(ReceiverReport, ssrc=u32, reports=block_lists),
    st.builds(
        SourceDescription,
        chunks=st.lists(
            st.builds(
                SdesChunk,
                ssrc=u32,
                items=st.lists(st.tuples(st.integers(1, 8), st.binary(max_size=30)), max_size=3).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
    ),
    st.builds(Bye, sources=st.lists(u32, max_size=3).map(tuple), reason=st.none() | st.binary(max_size=40)),
    st.builds(
        UnknownRtcp,
        packet_type=st.sampled_from([204, 205, 206, 207]),
        count=st.integers(0, 31),
        body=st.binary(max_size=20).map(lambda b: b[: len(b) // 4 * 4]),
    ),
)


@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_compound_round_trip(packets: list[object]) -> None:
    assert parse_compound(serialize_compound(packets)) == packets  # type: ignore[arg-type]


@given(st.binary(max_size=120))
def test_garbage_is_packets_or_rtcp_error(data: bytes) -> None:
    try:
        parse_compound(data)
    except RtcpPacketError:
        pass


def test_cname_and_padding() -> None:
    sdes = SourceDescription(chunks=(SdesChunk(ssrc=7, items=((1, b"user@host"),)),))
    [parsed] = parse_compound(serialize_compound([sdes]))
    assert isinstance(parsed, SourceDescription) and parsed.chunks[0].cname == "user@host"
    rr = bytearray(serialize_compound([ReceiverReport(ssrc=1)]) + b"\x00\x00\x00\x04")
    rr[0] |= 0x20
    rr[3] += 1
    assert parse_compound(bytes(rr)) == [ReceiverReport(ssrc=1)]


@pytest.mark.parametrize("data", [b"", b"\x80\xc9", bytes.fromhex("40c90001 00000001"), bytes.fromhex("81c90001 0001")])
def test_bad_rtcp(data: bytes) -> None:
    with pytest.raises(RtcpPacketError):
        parse_compound(data)


def feed(stats: ReceptionStats, seqs: list[int], start: float = 0.0) -> None:
    for i, seq in enumerate(seqs):
        stats.update(seq, (seq * 160) % 2**32, start + i * 0.02)


def test_sequence_wrap_counts_a_cycle() -> None:
    stats = ReceptionStats()
    feed(stats, [65533, 65534, 65535, 0, 1, 2])
    assert stats.cycles == 65536 and stats.extended_max == 65536 + 2
    assert stats.expected == 6 and stats.cumulative_lost == 0


@given(st.integers(0, 65535), st.integers(1, 500), st.sets(st.integers(1, 498)))
def test_loss_across_wrap(first: int, count: int, dropped: set[int]) -> None:
    stats = ReceptionStats()
    seqs = [(first + i) % 65536 for i in range(count) if i not in dropped or i == count - 1]
    feed(stats, seqs)
    assert stats.extended_max == first + count - 1
    assert stats.expected == count
    assert stats.cumulative_lost == count - len(seqs)


def test_fraction_lost_per_interval() -> None:
    stats = ReceptionStats()
    feed(stats, [i for i in range(100) if i % 4 != 1])  # 25 of the first 99 expected... 1 in 4 lost
    block = stats.report_block(ssrc=1, now=2.0)
    assert block.cumulative_lost == 25 and block.fraction_lost == (25 << 8) // 100
    feed(stats, list(range(100, 150)), start=2.0)
    assert stats.report_block(ssrc=1, now=3.0).fraction_lost == 0


def test_jitter_zero_for_perfect_pacing_and_grows_with_variation() -> None:
    stats = ReceptionStats()
    feed(stats, list(range(50)))
    assert stats.jitter == 0
    for i in range(50, 100):
        stats.update(i, i * 160, i * 0.02 + (0.01 if i % 2 else 0.0))
    assert 40 <= stats.jitter <= 80  # |D| = 80 samples; J converges towards 80


def test_large_jump_resyncs_after_two_sequential_packets() -> None:
    stats = ReceptionStats()
    feed(stats, [1, 2, 3])
    assert stats.update(40000, 0, 1.0) is False
    assert stats.update(40001, 160, 1.02) is True
    assert stats.base_seq == 40001 and stats.expected == 1


def test_lsr_dlsr() -> None:
    stats = ReceptionStats()
    feed(stats, [1])
    stats.sender_report_received(0x1234_5678_9ABC_DEF0, now=10.0)
    block = stats.report_block(ssrc=9, now=10.5)
    assert block.lsr == 0x5678_9ABC and block.dlsr == 32768
