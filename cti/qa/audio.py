"""Playback of recordings (RFC 9110 §14 range requests) with a channel choice and redacted spans, pure.

A recording is RIFF/PCM, 16-bit, 8 kHz, 2 channels, caller left and agent right (``sip.media.recfiles``). What is
served is a *virtual* WAV: ``both`` (the stereo file), ``caller`` or ``agent`` (a mono WAV of one channel), with
every sample inside a redacted span ``[start_s, end_s)`` set to silence. :func:`parse_range` reads one
``bytes=`` range; :func:`frames_for` says which stereo frames of the file a byte range needs; :func:`render` makes
those bytes. The asyncio side reads the frames from disk in a thread.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from cti.qa.errors import QaError

__all__ = ["Channel", "RangeNotSatisfiable", "WavLayout", "frames_for", "output_header", "output_size",
           "parse_range", "parse_wav_header", "render"]

HEADER = 44
_SAMPLE = 2


class Channel(enum.Enum):
    BOTH = "both"
    CALLER = "caller"  # left, channel 0
    AGENT = "agent"  # right, channel 1


class RangeNotSatisfiable(QaError):  # noqa: N818 - named after the HTTP status it maps to
    code = "qa.range_not_satisfiable"
    status_hint = 416


class BadRecording(QaError):  # noqa: N818
    code = "qa.bad_recording"
    status_hint = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class WavLayout:
    data_offset: int
    frames: int
    rate: int
    channels: int


def parse_wav_header(head: bytes, file_size: int) -> WavLayout:
    """The layout of a PCM WAV from its first bytes (the ``fmt `` and ``data`` chunks must be within them).

    Raises:
        BadRecording: not a 16-bit PCM WAV.
    """
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise BadRecording("not a RIFF/WAVE file")
    pos, fmt = 12, None
    while pos + 8 <= len(head):
        cid, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if cid == b"fmt " and pos + 8 + 16 <= len(head):
            fmt = struct.unpack_from("<HHIIHH", head, pos + 8)
        elif cid == b"data":
            if fmt is None or fmt[0] != 1 or fmt[5] != 16 or fmt[1] not in (1, 2):
                raise BadRecording("not 16-bit PCM")
            channels = fmt[1]
            available = max(0, file_size - (pos + 8))
            frames = min(size, available) // (channels * _SAMPLE)
            return WavLayout(data_offset=pos + 8, frames=frames, rate=fmt[2], channels=channels)
        pos += 8 + size + (size & 1)
    raise BadRecording("no data chunk in the header")


def _bpf(layout: WavLayout, channel: Channel) -> int:
    return _SAMPLE * (layout.channels if channel is Channel.BOTH else 1)


def output_size(layout: WavLayout, channel: Channel) -> int:
    return HEADER + layout.frames * _bpf(layout, channel)


def output_header(layout: WavLayout, channel: Channel) -> bytes:
    channels = layout.channels if channel is Channel.BOTH else 1
    data = layout.frames * channels * _SAMPLE
    return (b"RIFF" + struct.pack("<I", 36 + data) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, channels, layout.rate, layout.rate * channels * _SAMPLE,
                        channels * _SAMPLE, 16) + b"data" + struct.pack("<I", data))


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(first, last)`` byte positions (inclusive) of a ``Range: bytes=`` header, or None for the whole body.

    One range only; ``bytes=N-``, ``bytes=N-M`` and ``bytes=-K`` (the last K bytes).

    Raises:
        RangeNotSatisfiable: malformed, several ranges, or outside the body.
    """
    if header is None:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        raise RangeNotSatisfiable(f"one bytes= range is served, not {header!r}")
    first_s, dash, last_s = spec.strip().partition("-")
    try:
        if not dash:
            raise ValueError
        if first_s == "":
            suffix = int(last_s)
            if suffix <= 0:
                raise ValueError
            first, last = max(0, size - suffix), size - 1
        else:
            first = int(first_s)
            last = int(last_s) if last_s else size - 1
    except ValueError:
        raise RangeNotSatisfiable(f"malformed range {header!r}") from None
    if first < 0 or first >= size or last < first:
        raise RangeNotSatisfiable(f"range {header!r} is outside the {size} bytes")
    return first, min(last, size - 1)


def frames_for(layout: WavLayout, channel: Channel, first: int, last: int) -> tuple[int, int] | None:
    """The stereo frames ``[f0, f1)`` of the file that the output bytes ``first..last`` need (None: header only)."""
    if last < HEADER:
        return None
    bpf = _bpf(layout, channel)
    b0, b1 = max(0, first - HEADER), last - HEADER
    return b0 // bpf, b1 // bpf + 1


def render(layout: WavLayout, channel: Channel, first: int, last: int, frames: bytes, f0: int,
           redactions: Sequence[tuple[float, float]] = ()) -> bytes:
    """Output bytes ``first..last`` (inclusive), given the file's frames from ``f0`` on (as :func:`frames_for`
    asked); samples in a redacted span are silence."""
    out = b""
    if first < HEADER:
        out = output_header(layout, channel)[first:min(last, HEADER - 1) + 1]
    if last < HEADER:
        return out
    width = layout.channels * _SAMPLE
    body = bytearray(frames)
    for start_s, end_s in redactions:
        a = max(0, round(start_s * layout.rate) - f0)
        b = min(len(body) // width, round(end_s * layout.rate) - f0)
        if b > a:
            body[a * width:b * width] = bytes((b - a) * width)
    if channel is not Channel.BOTH and layout.channels == 2:
        offset = 0 if channel is Channel.CALLER else _SAMPLE
        mono = bytearray(len(body) // 2)
        mono[0::2] = body[offset::4]
        mono[1::2] = body[offset + 1::4]
        body = mono
    bpf = _bpf(layout, channel)
    b0, b1 = max(0, first - HEADER), last - HEADER
    return out + bytes(body[b0 - f0 * bpf:b1 - f0 * bpf + 1])
