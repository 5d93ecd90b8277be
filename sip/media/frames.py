"""The PCM frame convention of the media layer, and an anchored 20 ms frame clock.

Every PCM buffer inside ``sip.media`` is **8 kHz, 16-bit signed little-endian, mono**
(the native format of ``audioop`` on the little-endian hosts we run on, and the linear
form of G.711, ITU-T G.711 / RFC 3551 §4.5.14). A *frame* is 20 ms: 160 samples,
320 bytes, the packetisation time RFC 3551 §4.5 recommends for PCMU/PCMA (``ptime:20``).

:class:`FrameClock` is the pacing rule shared by the player and the mixer driver:
frame ``k`` is due at ``start + k * FRAME_SECONDS``. The schedule is anchored on one
monotonic start time, so it never drifts the way ``sleep(0.02)`` in a loop does.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from functools import lru_cache

from sip.media.errors import FrameSizeError

SAMPLE_RATE = 8000
SAMPLE_WIDTH = 2
CHANNELS = 1
FRAME_MS = 20
FRAME_SECONDS = FRAME_MS / 1000
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
FRAME_BYTES = FRAME_SAMPLES * SAMPLE_WIDTH
SILENCE_FRAME = bytes(FRAME_BYTES)

# Slack when comparing float times: a frame due at 0.06 must count as due at now=0.06
# even though 3 * 0.02 == 0.060000000000000005 in binary floating point.
_EPSILON = 1e-9


def check_frame(pcm: bytes) -> bytes:
    """Return ``pcm`` unchanged if it is exactly one frame.

    Raises:
        FrameSizeError: ``pcm`` is not ``FRAME_BYTES`` long.
    """
    if len(pcm) != FRAME_BYTES:
        raise FrameSizeError(f"PCM frame must be {FRAME_BYTES} bytes, got {len(pcm)}")
    return pcm


def split_frames(pcm: bytes) -> list[bytes]:
    """Cut 8 kHz mono PCM into 20 ms frames, padding the last one with silence."""
    if len(pcm) % SAMPLE_WIDTH:
        pcm = pcm[:-1]
    frames = [pcm[i : i + FRAME_BYTES] for i in range(0, len(pcm), FRAME_BYTES)]
    if frames and len(frames[-1]) < FRAME_BYTES:
        frames[-1] = frames[-1] + bytes(FRAME_BYTES - len(frames[-1]))
    return frames


def silence(duration: float) -> bytes:
    """Return ``duration`` seconds of silence, rounded to whole samples."""
    return bytes(round(duration * SAMPLE_RATE) * SAMPLE_WIDTH)


@lru_cache(maxsize=64)
def sine_tone(frequency: float, duration: float, amplitude: float = 0.5) -> bytes:
    """Return a sine tone as 8 kHz 16-bit mono PCM (cached; tones repeat a lot).

    ``amplitude`` is a fraction of full scale (0.0-1.0). The phase starts at 0 and the
    tone is generated in one piece, so it is continuous across frame boundaries.

    Raises:
        ValueError: the frequency is not below the Nyquist limit or amplitude is out of range.
    """
    if not 0 < frequency < SAMPLE_RATE / 2:
        raise ValueError(f"frequency must be in (0, {SAMPLE_RATE // 2}) Hz, got {frequency}")
    if not 0.0 <= amplitude <= 1.0:
        raise ValueError(f"amplitude must be within [0, 1], got {amplitude}")
    peak = amplitude * 32767
    step = 2 * math.pi * frequency / SAMPLE_RATE
    count = round(duration * SAMPLE_RATE)
    return array("h", (round(peak * math.sin(step * n)) for n in range(count))).tobytes()


@dataclass(slots=True, kw_only=True)
class FrameClock:
    """An anchored 20 ms schedule: frame ``k`` is due at ``start + k * FRAME_SECONDS``.

    ``due(now)`` hands out the indices of frames whose time has come. When the caller
    was late by more than ``max_burst`` frames, the oldest overdue frames are *skipped*
    (their indices are not returned, and :attr:`skipped` counts them): the schedule
    never shifts, so audio stays in step with wall time and the far end's jitter buffer
    never receives a burst larger than ``max_burst`` frames.
    """

    start: float
    max_burst: int = 3
    next_index: int = 0
    skipped: int = field(default=0)

    def due_time(self, index: int) -> float:
        """Return the time frame ``index`` is due."""
        return self.start + index * FRAME_SECONDS

    def next_due(self) -> float:
        """Return the time the next frame is due (the value for ``get_timer()``)."""
        return self.due_time(self.next_index)

    def due(self, now: float, limit: int | None = None) -> range:
        """Return the indices of the frames to produce at ``now`` (possibly empty).

        ``limit`` is the number of frames that exist: indices stop below it.
        """
        last = math.floor((now - self.start) / FRAME_SECONDS + _EPSILON)
        if limit is not None:
            last = min(last, limit - 1)
        if last < self.next_index:
            return range(0)
        first = self.next_index
        if last - first + 1 > self.max_burst:
            new_first = last - self.max_burst + 1
            self.skipped += new_first - first
            first = new_first
        self.next_index = last + 1
        return range(first, last + 1)
