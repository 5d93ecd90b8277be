"""Prompt loading: WAV files decoded to 8 kHz 16-bit mono PCM, off the event loop.

:func:`load_wav` is plain blocking code (file I/O plus ``audioop`` conversion). It accepts
PCM WAV files (format tag 1) of any rate, 8/16/24/32-bit, mono or stereo, and converts
them to the frame convention of :mod:`sip.media.frames`: stereo is mixed down with
``audioop.tomono`` (half of each channel), other sample widths go through
``audioop.lin2lin`` (8-bit WAV is unsigned, so it is biased first), and other rates are
resampled with ``audioop.ratecv``.

Its asyncio side, :class:`sip.media.aio.PromptCache`, runs it in a worker thread and keeps an LRU.
"""

from __future__ import annotations

import os
import warnings
import wave

import structlog

from sip.media.errors import PromptLoadError
from sip.media.frames import SAMPLE_RATE, SAMPLE_WIDTH

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

log = structlog.get_logger(__name__)

CacheKey = tuple[str, int, int]


def convert_pcm(data: bytes, *, width: int, channels: int, rate: int) -> bytes:
    """Convert interleaved linear PCM to 8 kHz 16-bit mono.

    Raises:
        PromptLoadError: unsupported channel count or sample width.
    """
    if channels not in (1, 2):
        raise PromptLoadError(f"unsupported channel count {channels}")
    if width not in (1, 2, 3, 4):
        raise PromptLoadError(f"unsupported sample width {width}")
    try:
        if width == 1:
            data = audioop.bias(data, 1, -128)  # WAV stores 8-bit samples unsigned
        if width != SAMPLE_WIDTH:
            data = audioop.lin2lin(data, width, SAMPLE_WIDTH)
        if channels == 2:
            data = audioop.tomono(data, SAMPLE_WIDTH, 0.5, 0.5)
        if rate != SAMPLE_RATE:
            data, _state = audioop.ratecv(data, SAMPLE_WIDTH, 1, rate, SAMPLE_RATE, None)
    except audioop.error as exc:
        raise PromptLoadError(f"cannot convert audio: {exc}") from exc
    return data


def load_wav(path: str | os.PathLike[str]) -> bytes:
    """Read a PCM WAV file and return it as 8 kHz 16-bit mono PCM. Blocking: run it in a thread.

    Raises:
        PromptLoadError: the file is missing, unreadable, not a WAV or not linear PCM.
    """
    try:
        with wave.open(os.fspath(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            data = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise PromptLoadError(f"cannot read WAV {os.fspath(path)!r}: {exc}") from exc
    return convert_pcm(data, width=width, channels=channels, rate=rate)


def stat_and_load(path: str, cached: CacheKey | None) -> tuple[CacheKey, bytes | None]:
    """Thread body: stat the file; read it only if the cache key changed."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise PromptLoadError(f"cannot stat prompt {path!r}: {exc}") from exc
    key = (path, st.st_mtime_ns, st.st_size)
    if key == cached:
        return key, None
    return key, load_wav(path)
