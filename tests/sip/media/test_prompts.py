"""WAV loading (resampling, stereo, 8-bit) and the async prompt cache."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from sip.media.aio import PromptCache
from sip.media.errors import PromptLoadError
from sip.media.prompts import convert_pcm, load_wav

from .audio_helpers import goertzel, sine, write_wav


def test_load_8k_mono_is_unchanged(tmp_path: Path) -> None:
    pcm = sine(440, 0.5)
    assert load_wav(write_wav(tmp_path / "a.wav", pcm)) == pcm


def test_resample_16k_to_8k(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "wide.wav", sine(500, 1.0, rate=16000), rate=16000)
    pcm = load_wav(path)
    assert abs(len(pcm) // 2 - 8000) <= 2
    assert goertzel(pcm[400:], 500) == pytest.approx(0.4, abs=0.04)


def test_stereo_and_8bit(tmp_path: Path) -> None:
    left = sine(300, 0.5)
    import audioop  # stdlib on 3.11/3.12

    stereo = audioop.add(audioop.tostereo(left, 2, 1, 0), audioop.tostereo(left, 2, 0, 1), 2)
    pcm = load_wav(write_wav(tmp_path / "st.wav", stereo, channels=2))
    assert goertzel(pcm, 300) == pytest.approx(0.4, abs=0.01)
    eight = audioop.bias(audioop.lin2lin(left, 2, 1), 1, 128)
    pcm8 = load_wav(write_wav(tmp_path / "8.wav", eight, width=1))
    assert goertzel(pcm8, 300) == pytest.approx(0.4, abs=0.02)


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(PromptLoadError):
        load_wav(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"not a wav at all")
    with pytest.raises(PromptLoadError):
        load_wav(tmp_path / "junk.wav")
    with pytest.raises(PromptLoadError):
        convert_pcm(b"\0\0", width=2, channels=3, rate=8000)


async def test_cache_loads_off_loop_and_reloads_on_mtime_change(tmp_path: Path) -> None:
    path = write_wav(tmp_path / "p.wav", sine(440, 0.2))
    cache = PromptCache()
    first, second = await asyncio.gather(cache.load(path), cache.load(path))
    assert first is second and cache.loads == 1
    assert (await cache.load(path)) is first and cache.loads == 1
    write_wav(path, sine(880, 0.3))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    third = await cache.load(path)
    assert cache.loads == 2 and len(third.pcm) == 4800
    with pytest.raises(PromptLoadError):
        await cache.load(tmp_path / "nope.wav")


async def test_cache_evicts_by_size(tmp_path: Path) -> None:
    cache = PromptCache(max_entries=2)
    for i in range(3):
        await cache.load(write_wav(tmp_path / f"{i}.wav", sine(440, 0.05)))
    assert len(cache) == 2
