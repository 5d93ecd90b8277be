"""Recorder: stereo layout, gaps as silence, timestamp placement, temp name + rename, recovery."""

from __future__ import annotations

import json
import os
import wave
from pathlib import Path

import pytest

from sip.media.aio import Recording
from sip.media.events import RecordingSerial
from sip.media.frames import FRAME_SAMPLES, split_frames
from sip.media.recfiles import RecordingInfo, RecoveryAction, WavPartWriter, recover_partials
from sip.media.recorder import Channel, LegTimeline, StereoAssembler, TapFrame
from sip.rtp.g711 import Codec, encode

from .audio_helpers import const_frame, goertzel, samples, sine

SERIAL = RecordingSerial("20250131-PAR1-000001")
INFO = RecordingInfo(
    serial=SERIAL,
    call_id="abc@host",
    started_at="2025-01-31T10:00:00+00:00",
    parties={"caller": "+3300000000", "agent": "1001"},
    queue="sales",
)


def listing(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def read_stereo(path: Path) -> tuple[bytes, bytes, int]:
    """Return (left, right, rate) of a 16-bit stereo WAV."""
    import audioop

    with wave.open(str(path), "rb") as wav:
        assert wav.getnchannels() == 2 and wav.getsampwidth() == 2
        data = wav.readframes(wav.getnframes())
        rate = wav.getframerate()
    return audioop.tomono(data, 2, 1, 0), audioop.tomono(data, 2, 0, 1), rate


def test_assembler_interleaves_left_caller_right_agent() -> None:
    asm = StereoAssembler(hold=0)
    asm.push(Channel.CALLER, const_frame(1), 0)
    asm.push(Channel.AGENT, const_frame(2), 0)
    out = samples(asm.drain())
    assert list(out[:4]) == [1, 2, 1, 2] and len(out) == 2 * FRAME_SAMPLES


def test_assembler_gaps_are_silence_and_channels_stay_aligned() -> None:
    asm = StereoAssembler(hold=0)
    for k in (0, 2):  # caller frame 1 lost
        asm.push(Channel.CALLER, const_frame(7), k * FRAME_SAMPLES)
    for k in range(3):
        asm.push(Channel.AGENT, const_frame(9), k * FRAME_SAMPLES)
    out = samples(asm.drain(final=True))
    left, right = out[0::2], out[1::2]
    assert len(left) == 3 * FRAME_SAMPLES
    assert set(left[FRAME_SAMPLES : 2 * FRAME_SAMPLES]) == {0}
    assert set(left[:FRAME_SAMPLES]) == {7} and set(left[2 * FRAME_SAMPLES :]) == {7}
    assert set(right) == {9}


def test_assembler_holds_back_and_drops_too_late_audio() -> None:
    asm = StereoAssembler(hold=FRAME_SAMPLES)
    asm.push(Channel.CALLER, const_frame(1), 0)
    asm.push(Channel.CALLER, const_frame(1), FRAME_SAMPLES)
    assert len(asm.drain()) == FRAME_SAMPLES * 4  # one frame held back
    asm.push(Channel.AGENT, const_frame(5), 0)  # too late: already emitted
    assert asm.late_samples == FRAME_SAMPLES
    out = samples(asm.drain(final=True))
    assert set(out[1::2]) == {0}


def test_leg_timeline_uses_timestamps_and_wraps() -> None:
    tl = LegTimeline()
    assert tl.position(ssrc=1, timestamp=0xFFFFFF00, arrival=800) == 800
    # jittered arrival, placement by timestamp across the 32-bit wrap
    assert tl.position(ssrc=1, timestamp=0x60, arrival=1100) == 800 + 0x160
    assert tl.position(ssrc=2, timestamp=5, arrival=2000) == 2000  # new SSRC re-anchors
    assert tl.position(ssrc=2, timestamp=5 + 100_000, arrival=2160) == 2160  # huge jump re-anchors


async def test_recording_end_to_end(tmp_path: Path) -> None:
    caller = split_frames(sine(400, 1.0))
    agent = split_frames(sine(1000, 1.0))
    rec = await Recording.open(tmp_path, INFO, clock_start=100.0)
    assert (tmp_path / f".{SERIAL}.wav.part").exists() and not (tmp_path / f"{SERIAL}.wav").exists()
    for k in range(50):
        now = 100.0 + k * 0.02 + (0.004 if k % 3 else 0.0)  # jittered arrival
        if not 20 <= k < 30:  # caller frames 20..29 lost
            rec.push_tap(
                [
                    TapFrame(
                        channel=Channel.CALLER,
                        codec=Codec.PCMU,
                        ssrc=11,
                        timestamp=5000 + 160 * k,
                        payload=encode(Codec.PCMU, caller[k]),
                        at=now,
                    )
                ]
            )
        rec.push_tap(
            [
                TapFrame(
                    channel=Channel.AGENT,
                    codec=Codec.PCMA,
                    ssrc=22,
                    timestamp=90 + 160 * k,
                    payload=encode(Codec.PCMA, agent[k]),
                    at=now,
                )
            ]
        )
        if k % 10 == 9:
            await rec.flush()
    path = await rec.close("2025-01-31T10:00:01+00:00")
    assert path == tmp_path / f"{SERIAL}.wav"
    assert listing(tmp_path) == [f"{SERIAL}.json", f"{SERIAL}.wav"]
    left, right, rate = read_stereo(path)
    assert rate == 8000 and len(left) // 2 == 8000  # exactly 1.0 s
    assert goertzel(left[:3200], 400) > 0.3 and goertzel(left[:3200], 1000) < 0.01
    assert goertzel(right, 1000) > 0.3 and goertzel(right, 400) < 0.01
    gap = left[20 * 320 : 30 * 320]
    assert set(samples(gap)) == {0}
    meta = json.loads((tmp_path / f"{SERIAL}.json").read_text())
    assert meta["serial"] == SERIAL and meta["call_id"] == "abc@host" and meta["queue"] == "sales"
    assert meta["ended_at"] == "2025-01-31T10:00:01+00:00" and meta["duration_s"] == 1.0
    assert meta["channels"] == {"left": "caller", "right": "agent"} and meta["recovered"] is False


async def test_recording_pcm_pushes_and_run_loop(tmp_path: Path) -> None:
    import asyncio

    class Tap:
        def __init__(self) -> None:
            self.calls = 0

        def drain_tap(self) -> list[TapFrame]:
            self.calls += 1
            return []

    rec = await Recording.open(tmp_path, INFO, clock_start=0.0)
    rec.push_pcm(Channel.AGENT, const_frame(3), 0.02)
    tap = Tap()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(rec.run(tap, interval=0.01), name="recorder-flush")
        await asyncio.sleep(0.05)
        await rec.close("end")
    assert tap.calls >= 1
    left, right, _ = read_stereo(tmp_path / f"{SERIAL}.wav")
    assert len(right) == 2 * 320 and set(samples(right[320:])) == {3} and set(samples(left)) == {0}


async def test_abort_removes_files(tmp_path: Path) -> None:
    rec = await Recording.open(tmp_path, INFO, clock_start=0.0)
    await rec.abort()
    assert listing(tmp_path) == []


def crash_after_writing(directory: Path, serial: str, frames: int) -> None:
    """Simulate a crash: write through WavPartWriter, then never finalise (and lose the header patch)."""
    info = RecordingInfo(serial=RecordingSerial(serial), call_id="c", started_at="t0", queue="q")
    writer = WavPartWriter(directory, info)
    writer.write(const_frame(4, 2 * FRAME_SAMPLES * frames))
    writer._wav = None  # the process died: no close(), header sizes may be stale


def test_recover_partials_finalises_valid_and_removes_empty(tmp_path: Path) -> None:
    crash_after_writing(tmp_path, "20250131-PAR1-000007", frames=25)
    part = tmp_path / ".20250131-PAR1-000007.wav.part"
    with open(part, "rb+") as fh:  # stale header, plus half a sample of torn write
        fh.seek(40)
        fh.write(b"\0\0\0\0")
        fh.seek(0, os.SEEK_END)
        fh.write(b"\x01")
    crash_after_writing(tmp_path, "20250131-PAR1-000008", frames=0)
    (tmp_path / ".20250131-PAR1-000009.wav.part").write_bytes(b"RIFF")
    (tmp_path / ".20250131-PAR1-000010.json.part").write_text("{}")

    done = {r.serial: r.action for r in recover_partials(tmp_path)}
    assert done == {
        "20250131-PAR1-000007": RecoveryAction.FINALISED,
        "20250131-PAR1-000008": RecoveryAction.REMOVED,
        "20250131-PAR1-000009": RecoveryAction.REMOVED,
        "20250131-PAR1-000010": RecoveryAction.REMOVED,
    }
    assert listing(tmp_path) == ["20250131-PAR1-000007.json", "20250131-PAR1-000007.wav"]
    left, right, _ = read_stereo(tmp_path / "20250131-PAR1-000007.wav")
    assert len(left) == 25 * 320 and set(samples(left)) == {4}
    meta = json.loads((tmp_path / "20250131-PAR1-000007.json").read_text())
    assert meta["recovered"] is True and meta["ended_at"] is None and meta["queue"] == "q"
    assert meta["duration_s"] == pytest.approx(0.5)
    assert recover_partials(tmp_path) == []  # idempotent


def test_recover_sidecar_after_crash_between_renames(tmp_path: Path) -> None:
    crash_after_writing(tmp_path, "20250131-PAR1-000011", frames=5)
    (tmp_path / ".20250131-PAR1-000011.wav.part").rename(tmp_path / "20250131-PAR1-000011.wav")
    recover_partials(tmp_path)  # the WAV header is stale but readable; sidecar is finalised
    assert listing(tmp_path) == ["20250131-PAR1-000011.json", "20250131-PAR1-000011.wav"]


async def test_a_recording_whose_thread_falls_behind_drops_and_counts_instead_of_growing(tmp_path: Path) -> None:
    from sip.media.recorder import MAX_PENDING

    rec = await Recording.open(tmp_path, INFO, clock_start=0.0)
    frame = encode(Codec.PCMU, const_frame(1000))
    frames = [TapFrame(Channel.CALLER, Codec.PCMU, 1, 160 * k, frame, 0.02 * k) for k in range(MAX_PENDING + 7)]
    rec.push_tap(frames)
    rec.push_pcm(Channel.AGENT, const_frame(1000), 1.0)
    assert rec.dropped == 8
    path = await rec.close("2025-01-31T10:01:00+00:00")
    left, _, _ = read_stereo(path)
    assert len(left) >= MAX_PENDING * FRAME_SAMPLES * 2  # what was queued is written
