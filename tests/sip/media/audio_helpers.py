"""Test helpers: tone energy by Goertzel, constant frames, WAV writing."""

from __future__ import annotations

import math
import wave
from array import array
from pathlib import Path


def samples(pcm: bytes) -> array[int]:
    out = array("h")
    out.frombytes(pcm)
    return out


def goertzel(pcm: bytes, frequency: float, rate: int = 8000) -> float:
    """Normalised amplitude (0..1 of full scale) of ``frequency`` in 16-bit mono ``pcm``."""
    x = samples(pcm)
    n = len(x)
    if n == 0:
        return 0.0
    coeff = 2 * math.cos(2 * math.pi * frequency / rate)
    s1 = s2 = 0.0
    for v in x:
        s0 = v + coeff * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / n / 32768


def const_frame(value: int, count: int = 160) -> bytes:
    return array("h", [value] * count).tobytes()


def write_wav(path: Path, pcm: bytes, *, rate: int = 8000, channels: int = 1, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm)
    return path


def sine(frequency: float, seconds: float, *, rate: int = 8000, amplitude: float = 0.4) -> bytes:
    n = round(seconds * rate)
    return array(
        "h", (round(amplitude * 32767 * math.sin(2 * math.pi * frequency * i / rate)) for i in range(n))
    ).tobytes()
