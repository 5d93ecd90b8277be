"""The asyncio side of one message (cti.voicemail.take) on a real event loop and files: the caller's RTP goes into
the WAV by its timestamps, ``#`` / silence / max_seconds end the wait, the kept message has the file's length."""

from __future__ import annotations

import asyncio
import struct
import warnings
import wave
from pathlib import Path

from cti.voicemail import VoicemailTake, recover_messages
from sip.rtp import AudioReceived, Codec, Ssrc

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

LOUD = struct.pack("<160h", *([4000, -4000] * 80))


def _packet(n: int) -> AudioReceived:
    return AudioReceived(now=0.0, payload=audioop.lin2ulaw(LOUD, 2), pcm=LOUD, payload_type=0, timestamp=160 * n,
                         sequence_number=n, ssrc=Ssrc(7), marker=n == 0)


async def _take(tmp_path: Path, silence: float = 5.0) -> VoicemailTake:
    return await VoicemailTake.open(tmp_path / "vm", message_id="vm-20261207-00000000000a", call_id="c1",
                                    mailbox="support", queue="support", caller="5551234", started=1000.0,
                                    silence_seconds=silence)


async def test_pound_ends_the_wait_and_the_message_holds_the_callers_audio(tmp_path: Path) -> None:
    take = await _take(tmp_path)
    for n in range(50):  # one second of speech, arrived at once: placed by RTP timestamp
        take.push(_packet(n), Codec.PCMA)  # PCMA negotiated, μ-law sent: decoded as sent
    loop = asyncio.get_running_loop()
    loop.call_later(0.7, take.stop)
    assert await take.wait(30.0) == "key"
    message = await take.keep(1001.0)
    assert (message.id, message.call_id, message.queue, message.path) == (
        "vm-20261207-00000000000a", "c1", "support", "vm-20261207-00000000000a.wav")
    with wave.open(str(tmp_path / "vm" / message.path)) as wav:
        frames = wav.readframes(wav.getnframes())
        assert wav.getnchannels() == 2 and abs(wav.getnframes() / 8000 - message.duration_s) < 1e-9
    assert message.duration_s >= 1.0
    assert 3500 < audioop.rms(audioop.tomono(frames, 2, 1, 0), 2) < 4500  # the caller, left, decoded as sent
    assert audioop.rms(audioop.tomono(frames, 2, 0, 1), 2) == 0  # nobody on the right
    assert (tmp_path / "vm" / "vm-20261207-00000000000a.json").exists()


async def test_silence_and_max_seconds_end_the_wait(tmp_path: Path) -> None:
    quiet = await _take(tmp_path, silence=0.3)
    loop = asyncio.get_running_loop()
    start = loop.time()
    assert await quiet.wait(30.0) == "silence"  # nothing ever came
    assert 0.29 <= loop.time() - start < 1.0
    await quiet.keep(1002.0)
    talker = await VoicemailTake.open(tmp_path / "vm", message_id="vm-20261207-00000000000b", call_id="c2",
                                      mailbox="x", queue=None, caller="1", started=1.0, silence_seconds=5.0)
    start = loop.time()
    assert await talker.wait(0.4) == "max_seconds"
    assert 0.39 <= loop.time() - start < 1.0
    assert (await talker.keep(3.0)).queue is None


async def test_a_message_cut_by_a_crash_is_recovered_with_its_sidecar(tmp_path: Path) -> None:
    take = await _take(tmp_path)
    for n in range(25):
        take.push(_packet(n), Codec.PCMU)
    await take.recording.flush()  # written so far; then the node dies (no keep, no close)
    (tmp_path / "vm" / ".stray.wav.part").write_bytes(b"RIFF")  # a part without audio is removed
    [message] = recover_messages(tmp_path / "vm")
    assert (message.id, message.call_id, message.mailbox, message.queue, message.caller, message.started) == (
        "vm-20261207-00000000000a", "c1", "support", "support", "5551234", 1000.0)
    assert message.path == "vm-20261207-00000000000a.wav" and 0.2 < message.duration_s <= 0.5
    assert sorted(p.name for p in (tmp_path / "vm").iterdir()) == [
        "vm-20261207-00000000000a.json", "vm-20261207-00000000000a.wav"]
    await take.recording.abort()  # the test's own clean-up of the writer's handle
    assert recover_messages(tmp_path / "vm") == []
