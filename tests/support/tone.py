"""Tones for audio checks: a G.711 tone as an RTP pcap SIPp can play, and a Goertzel detector.

The detector is written by hand (no numpy needed): :func:`tone_levels` gives the Goertzel power of
a few candidate frequencies over a stretch of samples, normalised by the stretch's energy, so a
test can say "this channel carries 1000 Hz, not 440 Hz".
"""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

from sip.rtp.g711 import encode_alaw

RATE = 8000


def tone_pcm(freq: float, seconds: float, *, rate: int = RATE, amplitude: int = 8000) -> bytes:
    """16-bit little-endian mono samples of a sine."""
    count = int(seconds * rate)
    return struct.pack(f"<{count}h", *(int(amplitude * math.sin(2 * math.pi * freq * n / rate)) for n in range(count)))


def write_tone_pcap(path: Path, freq: float, seconds: float, *, ptime_ms: int = 20) -> Path:
    """An Ethernet/IPv4/UDP/RTP capture of an A-law (PT 8) tone, one packet per ``ptime_ms``, for
    SIPp's ``play_pcap_audio`` (it rewrites addresses and ports, keeps the pcap's pacing)."""
    payload = encode_alaw(tone_pcm(freq, seconds))
    per_packet = RATE * ptime_ms // 1000
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]  # pcap header, link type Ethernet
    for index, start in enumerate(range(0, len(payload) - per_packet + 1, per_packet)):
        rtp = struct.pack("!BBHII", 0x80, 8, index & 0xFFFF, start, 0x5EED) + payload[start:start + per_packet]
        udp = struct.pack("!HHHH", 6000, 6002, 8 + len(rtp), 0) + rtp
        total = 20 + len(udp)
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, index & 0xFFFF, 0, 64, 17, 0,
                             bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1]))
        checksum = _ip_checksum(header)
        ip = header[:10] + struct.pack("!H", checksum) + header[12:] + udp
        frame = b"\x00" * 12 + b"\x08\x00" + ip
        usec = index * ptime_ms * 1000
        out.append(struct.pack("<IIII", usec // 1_000_000, usec % 1_000_000, len(frame), len(frame)) + frame)
    path.write_bytes(b"".join(out))
    return path


def write_tone_wav(path: Path, freq: float, seconds: float, *, rate: int = RATE) -> Path:
    """A 16-bit mono WAV of a sine (a softphone's "microphone" in file mode)."""
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(tone_pcm(freq, seconds, rate=rate))
    return path


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def goertzel(samples: list[int], rate: int, freq: float) -> float:
    """The power of ``freq`` in ``samples`` (Goertzel's algorithm)."""
    coeff = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    return s1 * s1 + s2 * s2 - coeff * s1 * s2


def tone_levels(samples: list[int], rate: int, freqs: tuple[float, ...]) -> dict[float, float]:
    """For each frequency, the share of the stretch's energy it holds (0..1, about 1 for a pure tone)."""
    energy = sum(x * x for x in samples) or 1
    n = len(samples)
    return {f: 2 * goertzel(samples, rate, f) / (n * energy) for f in freqs}


def read_wav(path: Path) -> tuple[int, list[list[int]]]:
    """(sample rate, one list of samples per channel) of a 16-bit PCM WAV."""
    with wave.open(str(path)) as wav:
        rate, channels, width = wav.getframerate(), wav.getnchannels(), wav.getsampwidth()
        frames = wav.readframes(wav.getnframes())
    if width != 2:
        raise ValueError(f"{path}: {8 * width}-bit samples, expected 16")
    samples = struct.unpack(f"<{len(frames) // 2}h", frames)
    return rate, [list(samples[c::channels]) for c in range(channels)]


def tone_share(samples: list[int], rate: int, freq: float, *, frame_ms: int = 20, spread: float = 40.0) -> float:
    """The median, over the frames that hold sound, of the share of a frame's energy at ``freq``
    (the best of ``freq`` and its neighbours within ``spread`` Hz, in 10 Hz steps).

    Short frames (20 ms: a 50 Hz wide filter) make the measure robust to what a relay does to a
    tone between packets (a gap, a repeated or a dropped packet breaks the phase and bends the
    pitch a little); the median ignores silence and the odd frame of another sound. About 1 for a
    steady tone near ``freq``, about 0 for one 200 Hz or more away.
    """
    size = rate * frame_ms // 1000
    steps = int(spread // 10)
    candidates = tuple(freq + 10.0 * k for k in range(-steps, steps + 1))
    shares = []
    for start in range(0, len(samples) - size + 1, size):
        frame = samples[start:start + size]
        if max(frame) - min(frame) > 200:  # more than quantisation noise
            shares.append(max(tone_levels(frame, rate, candidates).values()))
    if not shares:
        return 0.0
    shares.sort()
    return shares[len(shares) // 2]
