"""Range requests, channel extraction and redaction over a virtual WAV (pure)."""

from __future__ import annotations

import struct

import pytest

from cti.qa.audio import (
    Channel,
    RangeNotSatisfiable,
    WavLayout,
    frames_for,
    output_header,
    output_size,
    parse_range,
    parse_wav_header,
    render,
)

LAYOUT = WavLayout(data_offset=44, frames=100, rate=8000, channels=2)
FRAMES = b"".join(struct.pack("<hh", i, -i) for i in range(100))


def whole(channel: Channel, redactions: list[tuple[float, float]] = ()) -> bytes:  # type: ignore[assignment]
    size = output_size(LAYOUT, channel)
    return render(LAYOUT, channel, 0, size - 1, FRAMES, 0, redactions)


@pytest.mark.parametrize(("header", "size", "expected"), [
    (None, 100, None), ("bytes=0-9", 100, (0, 9)), ("bytes=90-", 100, (90, 99)), ("bytes=-10", 100, (90, 99)),
    ("bytes=50-500", 100, (50, 99)), ("bytes=-500", 100, (0, 99)),
])
def test_ranges(header: str | None, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-2", "bytes=0-1,5-6", "items=0-1", "bytes=a-b",
                                    "bytes=-0", "bytes=5"])
def test_bad_ranges_are_416(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable) as refused:
        parse_range(header, 100)
    assert refused.value.status_hint == 416


def test_channels_and_any_byte_range_are_consistent() -> None:
    stereo, caller, agent = whole(Channel.BOTH), whole(Channel.CALLER), whole(Channel.AGENT)
    assert stereo == output_header(LAYOUT, Channel.BOTH) + FRAMES
    assert parse_wav_header(stereo, len(stereo)) == LAYOUT
    assert parse_wav_header(caller, len(caller)) == WavLayout(data_offset=44, frames=100, rate=8000, channels=1)
    assert caller[44:] == b"".join(struct.pack("<h", i) for i in range(100))
    assert agent[44:] == b"".join(struct.pack("<h", -i) for i in range(100))
    for channel, full in ((Channel.BOTH, stereo), (Channel.CALLER, caller)):
        for first, last in ((0, 10), (40, 47), (43, 44), (45, 45), (100, len(full) - 1)):
            span = frames_for(LAYOUT, channel, first, last)
            f0, f1 = span if span else (0, 0)
            part = render(LAYOUT, channel, first, last, FRAMES[f0 * 4:f1 * 4], f0)
            assert part == full[first:last + 1], (channel, first, last)


def test_redacted_spans_are_silence() -> None:
    out = whole(Channel.BOTH, [(10 / 8000, 20 / 8000)])[44:]
    samples = list(struct.iter_unpack("<hh", out))
    assert samples[9] == (9, -9) and samples[10:20] == [(0, 0)] * 10 and samples[20] == (20, -20)
