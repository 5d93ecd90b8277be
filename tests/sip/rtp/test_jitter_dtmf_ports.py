"""Jitter buffer (wrap-safe), RFC 4733 DTMF receive/send, media port allocation."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip.rtp import (
    DtmfError,
    DtmfReceiver,
    JitterBuffer,
    PortAllocator,
    PortsExhaustedError,
    PushResult,
    SequenceUnwrapper,
    TelephoneEvent,
    digit_frames,
)


def test_wrap_is_just_the_next_packet() -> None:
    buf: JitterBuffer[int] = JitterBuffer(depth=2)
    out = []
    for seq in [65534, 65535, 0, 1]:
        assert buf.push(seq, seq) is PushResult.ACCEPTED
        while (item := buf.pop()) is not None:
            out.append(item)
    assert out == [65534, 65535, 0, 1] and buf.lost == 0


def test_reorder_duplicate_late_and_loss() -> None:
    buf: JitterBuffer[int] = JitterBuffer(depth=2)
    assert buf.push(10, 10) is PushResult.ACCEPTED
    assert buf.pop() == 10
    assert buf.push(12, 12) is PushResult.ACCEPTED
    assert buf.pop() is None  # waiting for 11
    assert buf.push(12, 12) is PushResult.DUPLICATE
    assert buf.push(11, 11) is PushResult.ACCEPTED
    assert [buf.pop(), buf.pop(), buf.pop()] == [11, 12, None]
    assert buf.push(10, 10) is PushResult.LATE
    for seq in (15, 16, 17):  # 13 and 14 never come
        buf.push(seq, seq)
    assert [buf.pop(), buf.pop(), buf.pop()] == [15, 16, 17]
    assert (buf.lost, buf.late, buf.duplicates) == (2, 1, 1)


def test_huge_jump_resets() -> None:
    buf: JitterBuffer[int] = JitterBuffer(depth=2, capacity=10)
    buf.push(100, 100)
    buf.pop()
    assert buf.push(30000, 30000) is PushResult.RESET
    assert buf.pop() == 30000 and buf.push(30001, 30001) is PushResult.ACCEPTED


@given(st.integers(0, 65535), st.integers(1, 300), st.randoms(use_true_random=False), st.sets(st.integers(0, 299)))
def test_in_order_output_across_wrap(first: int, count: int, rnd: random.Random, dropped: set[int]) -> None:
    """Shuffled within a small window, with losses: output is increasing in extended seq, no item twice."""
    offsets = [i for i in range(count) if i not in dropped or i in (0, count - 1)]
    arrival = list(offsets)
    for i in range(0, len(arrival) - 1, 2):  # swap neighbours at random: bounded reordering
        if rnd.random() < 0.5:
            arrival[i], arrival[i + 1] = arrival[i + 1], arrival[i]
    buf: JitterBuffer[int] = JitterBuffer(depth=3)
    out: list[int] = []
    for off in arrival:
        buf.push((first + off) % 65536, off)
        while (item := buf.pop()) is not None:
            out.append(item)
    out += buf.drain()
    assert out == sorted(out) and len(set(out)) == len(out)
    assert buf.late + len(out) == len(offsets)
    assert buf.lost + len(out) + buf.late >= count - 1 - (1 if arrival[0] != 0 else 0)


@given(st.integers(0, 65535), st.lists(st.integers(-50, 300), max_size=100))
def test_unwrapper_is_continuous(first: int, steps: list[int]) -> None:
    unwrapper = SequenceUnwrapper()
    assert unwrapper.unwrap(first) == first
    highest = first
    for step in steps:
        ext = unwrapper.unwrap((highest + step) % 65536)
        assert ext == highest + step
        highest = max(highest, ext)


# --- DTMF ------------------------------------------------------------------------------


def run(receiver: DtmfReceiver, packets: list[tuple[int, bytes]]) -> list[str]:
    return [d.digit for ts, payload in packets for d in receiver.receive(ts, payload)]


def event_packets(event: int, ts: int, ends: int = 3) -> list[tuple[int, bytes]]:
    updates = [(ts, TelephoneEvent(event=event, duration=d).serialize()) for d in (160, 320, 480)]
    end = TelephoneEvent(event=event, end=True, duration=640).serialize()
    return updates + [(ts, end)] * ends


def test_three_end_packets_make_one_digit() -> None:
    receiver = DtmfReceiver()
    assert run(receiver, event_packets(1, 1000)) == ["1"]


def test_new_timestamp_is_a_new_event_even_for_the_same_digit() -> None:
    receiver = DtmfReceiver()
    packets = event_packets(5, 1000) + event_packets(5, 3000) + event_packets(11, 5000)
    assert run(receiver, packets) == ["5", "5", "#"]


def test_lost_end_packets_still_report_the_digit() -> None:
    receiver = DtmfReceiver()
    assert run(receiver, event_packets(2, 1000, ends=0) + event_packets(3, 2000)) == ["2", "3"]
    assert run(receiver, event_packets(4, 3000, ends=0)) == []
    assert [d.digit for d in receiver.flush()] == ["4"]


def test_digit_duration() -> None:
    [digit] = DtmfReceiver().receive(7, TelephoneEvent(event=9, end=True, duration=800).serialize())
    assert digit.digit == "9" and digit.duration == pytest.approx(0.1)


def test_bad_payload() -> None:
    with pytest.raises(DtmfError):
        DtmfReceiver().receive(1, b"\x01")


def test_send_sequence() -> None:
    frames = digit_frames("7", duration=0.1)
    events = [TelephoneEvent.parse(f.payload) for f in frames]
    assert [f.marker for f in frames] == [True, False, False, False, False, False, False]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert [e.duration for e in events] == [160, 320, 480, 640, 800, 800, 800]
    assert {e.event for e in events} == {7}
    assert [f.offset for f in frames] == pytest.approx([0, 0.02, 0.04, 0.06, 0.08, 0.08, 0.08])
    receiver = DtmfReceiver()
    assert run(receiver, [(1234, f.payload) for f in frames]) == ["7"]


def test_send_rejects_bad_digits() -> None:
    with pytest.raises(DtmfError):
        digit_frames("x")
    with pytest.raises(DtmfError):
        digit_frames("1", duration=10.0)


# --- ports -----------------------------------------------------------------------------


def test_ports_are_even_pairs_and_run_out() -> None:
    ports = PortAllocator(20001, 20008)
    got = [ports.allocate() for _ in range(ports.capacity)]
    assert got == [20002, 20004, 20006] and all(p % 2 == 0 and p + 1 <= 20008 for p in got)
    with pytest.raises(PortsExhaustedError):
        ports.allocate()
    ports.release(20004)
    assert ports.allocate() == 20004


def test_released_port_is_not_reused_at_once() -> None:
    ports = PortAllocator(30000, 30010)
    first = ports.allocate()
    ports.release(first)
    assert ports.allocate() != first


def test_bad_range() -> None:
    with pytest.raises(ValueError):
        PortAllocator(20001, 20001)
