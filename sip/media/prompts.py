"""Prompt loading: WAV files decoded to 8 kHz 16-bit mono PCM, off the event loop.

:func:`load_wav` is plain blocking code (file I/O plus ``audioop`` conversion). It accepts
PCM WAV files (format tag 1) of any rate, 8/16/24/32-bit, mono or stereo, and converts
them to the frame convention of :mod:`sip.media.frames`: stereo is mixed down with
``audioop.tomono`` (half of each channel), other sample widths go through
``audioop.lin2lin`` (8-bit WAV is unsigned, so it is biased first), and other rates are
resampled with ``audioop.ratecv``.

:class:`PromptCache` is the asyncio side: ``await cache.load(path)`` runs ``stat`` and
:func:`load_wav` in a worker thread (``asyncio.to_thread``) and keeps a small LRU of
decoded prompts keyed by ``(path, mtime_ns, size)`` (the path as given: pass absolute
paths), so an edited prompt is reloaded and concurrent loads of the same file share one read.
"""

from __future__ import annotations

import asyncio
import os
import warnings
import wave
from collections import OrderedDict
from pathlib import Path

import structlog

from sip.media.errors import PromptLoadError
from sip.media.frames import SAMPLE_RATE, SAMPLE_WIDTH
from sip.media.player import Prompt

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

log = structlog.get_logger(__name__)

_CacheKey = tuple[str, int, int]


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


def _stat_and_load(path: str, cached: _CacheKey | None) -> tuple[_CacheKey, bytes | None]:
    """Thread body: stat the file; read it only if the cache key changed."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise PromptLoadError(f"cannot stat prompt {path!r}: {exc}") from exc
    key = (path, st.st_mtime_ns, st.st_size)
    if key == cached:
        return key, None
    return key, load_wav(path)


class PromptCache:
    """An LRU of decoded prompts keyed by path + mtime + size; all file work runs in threads."""

    def __init__(self, *, max_entries: int = 64, max_bytes: int = 32 * 1024 * 1024) -> None:
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[_CacheKey, Prompt]] = OrderedDict()
        self._bytes = 0
        self._inflight: dict[str, asyncio.Future[Prompt]] = {}
        self.loads = 0
        """Number of files actually decoded (cache misses), for tests and metrics."""

    def __len__(self) -> int:
        return len(self._entries)

    async def load(self, path: str | os.PathLike[str]) -> Prompt:
        """Return the prompt at ``path``, reading and decoding it in a worker thread if needed.

        The file is ``stat``-ed (in the thread) on every call, so an edited file is reloaded.

        Raises:
            PromptLoadError: the file cannot be read or decoded.
        """
        key_path = os.fspath(path)
        pending = self._inflight.get(key_path)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Prompt] = asyncio.get_running_loop().create_future()
        self._inflight[key_path] = future
        try:
            prompt = await self._load(key_path)
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # mark it retrieved: waiters re-raise it, nobody else must
            raise
        except BaseException:
            future.cancel()
            raise
        else:
            future.set_result(prompt)
            return prompt
        finally:
            del self._inflight[key_path]

    async def _load(self, key_path: str) -> Prompt:
        entry = self._entries.get(key_path)
        key, pcm = await asyncio.to_thread(_stat_and_load, key_path, entry[0] if entry else None)
        if pcm is None and entry is not None:
            self._entries.move_to_end(key_path)
            return entry[1]
        assert pcm is not None
        self.loads += 1
        prompt = Prompt(name=Path(key_path).name, pcm=pcm)
        self._store(key_path, key, prompt)
        log.debug("media.prompt.loaded", path=key_path, bytes=len(pcm))
        return prompt

    def _store(self, key_path: str, key: _CacheKey, prompt: Prompt) -> None:
        old = self._entries.pop(key_path, None)
        if old is not None:
            self._bytes -= len(old[1].pcm)
        if len(prompt.pcm) > self._max_bytes:
            return  # too big to cache; still returned to the caller
        self._entries[key_path] = (key, prompt)
        self._bytes += len(prompt.pcm)
        while len(self._entries) > self._max_entries or self._bytes > self._max_bytes:
            _path, (_key, evicted) = self._entries.popitem(last=False)
            self._bytes -= len(evicted.pcm)
