"""Recording files: the WAV being written, its JSON sidecar, and crash recovery.

Layout of one recording ``S`` (a serial, see :mod:`sip.media.serial`) in the recordings
directory:

- while recording: ``.S.wav.part`` (the audio) and ``.S.json.part`` (metadata known at start);
- when closed: ``S.wav`` and ``S.json``. The WAV is renamed first, then the final sidecar is
  written under a temporary name and renamed over ``S.json``; both renames are atomic
  (``os.replace``) after an ``fsync``, so a finished name never points at a half-written file.

The WAV is RIFF/PCM, 2 channels, 16-bit, 8 kHz, with the **caller on the left channel
(channel 0) and the agent on the right (channel 1)**.

Crash rule (:func:`recover_partials`, run once at start-up, before recording anything):

- a ``.S.wav.part`` holding a valid WAV header and at least one stereo sample is
  *finalised*: its RIFF/data sizes are rewritten from the file length (cut to whole
  samples), it is renamed to ``S.wav``, and ``S.json`` is written from ``.S.json.part``
  with ``"recovered": true`` and ``"ended_at": null``;
- a ``.S.wav.part`` that is too short or has no valid header is *removed*, with its sidecar;
- a ``.S.json.part`` whose ``S.wav`` exists (crash between the two renames) is finalised,
  one without any WAV is removed; stray ``.S.json.tmp`` files are removed.

All functions here block (file I/O): run them in a worker thread.
"""

from __future__ import annotations

import json
import os
import struct
import wave
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from sip.media.errors import RecordingError
from sip.media.events import RecordingSerial
from sip.media.frames import SAMPLE_RATE, SAMPLE_WIDTH

STEREO_CHANNELS = 2
STEREO_SAMPLE_BYTES = STEREO_CHANNELS * SAMPLE_WIDTH
_HEADER_BYTES = 44  # what the wave module writes for PCM: RIFF + fmt (16) + data


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordingInfo:
    """Metadata of one recording, written to its JSON sidecar."""

    serial: RecordingSerial
    call_id: str
    started_at: str
    """ISO 8601 wall-clock start, given by the caller."""
    parties: dict[str, str] = field(default_factory=dict)
    """Who was on the call, e.g. ``{"caller": "+33...", "agent": "1001"}`` (redact per config)."""
    queue: str | None = None


def part_wav(directory: Path, serial: str) -> Path:
    """Path of the WAV being written."""
    return directory / f".{serial}.wav.part"


def part_json(directory: Path, serial: str) -> Path:
    """Path of the sidecar written at start."""
    return directory / f".{serial}.json.part"


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.stem}.json.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _sidecar(info: RecordingInfo) -> dict[str, Any]:
    return {
        "serial": info.serial,
        "call_id": info.call_id,
        "started_at": info.started_at,
        "ended_at": None,
        "parties": dict(info.parties),
        "queue": info.queue,
        "channels": {"left": "caller", "right": "agent"},
        "sample_rate": SAMPLE_RATE,
        "sample_width": SAMPLE_WIDTH,
        "recovered": False,
    }


class WavPartWriter:
    """Writes ``.S.wav.part`` and renames it to ``S.wav`` on :meth:`finalize`. Blocking."""

    def __init__(self, directory: str | os.PathLike[str], info: RecordingInfo) -> None:
        """Create the part files.

        Raises:
            RecordingError: the directory or files cannot be created.
        """
        self._dir = Path(directory)
        self._info = info
        self._path = part_wav(self._dir, info.serial)
        self._frames = 0
        try:
            self._dir.mkdir(parents=True, exist_ok=True)
            _write_json_atomic(part_json(self._dir, info.serial), _sidecar(info))
            self._wav: wave.Wave_write | None = wave.open(str(self._path), "wb")
            self._wav.setnchannels(STEREO_CHANNELS)
            self._wav.setsampwidth(SAMPLE_WIDTH)
            self._wav.setframerate(SAMPLE_RATE)
            self._wav.writeframes(b"")  # header on disk at once, so recovery can read it
        except (OSError, wave.Error) as exc:
            raise RecordingError(f"cannot open recording {info.serial}: {exc}") from exc

    @property
    def samples(self) -> int:
        """Stereo samples written so far."""
        return self._frames

    def write(self, stereo: bytes) -> None:
        """Append interleaved stereo 16-bit PCM.

        Raises:
            RecordingError: the file is closed or the write failed.
        """
        if self._wav is None:
            raise RecordingError(f"recording {self._info.serial} is closed")
        if not stereo:
            return
        try:
            self._wav.writeframes(stereo)
        except (OSError, wave.Error) as exc:
            raise RecordingError(f"cannot write recording {self._info.serial}: {exc}") from exc
        self._frames += len(stereo) // STEREO_SAMPLE_BYTES

    def finalize(self, ended_at: str) -> Path:
        """Close, fsync and rename to ``S.wav``; then write ``S.json``. Returns the WAV path.

        Raises:
            RecordingError: the file cannot be closed or renamed.
        """
        if self._wav is None:
            raise RecordingError(f"recording {self._info.serial} is already closed")
        final = self._dir / f"{self._info.serial}.wav"
        try:
            self._wav.close()
            self._wav = None
            with open(self._path, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(self._path, final)
            meta = _sidecar(self._info)
            meta["ended_at"] = ended_at
            meta["duration_s"] = self._frames / SAMPLE_RATE
            _write_json_atomic(self._dir / f"{self._info.serial}.json", meta)
            part_json(self._dir, self._info.serial).unlink(missing_ok=True)
            _fsync_dir(self._dir)
        except (OSError, wave.Error) as exc:
            raise RecordingError(f"cannot finalise recording {self._info.serial}: {exc}") from exc
        return final

    def abort(self) -> None:
        """Close and delete the part files (a recording that must not be kept)."""
        if self._wav is not None:
            try:
                self._wav.close()
            except (OSError, wave.Error):
                pass
            self._wav = None
        self._path.unlink(missing_ok=True)
        part_json(self._dir, self._info.serial).unlink(missing_ok=True)


class RecoveryAction(Enum):
    """What :func:`recover_partials` did with a leftover."""

    FINALISED = "finalised"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Recovered:
    """One leftover handled by :func:`recover_partials`."""

    serial: str
    action: RecoveryAction
    path: Path


def _repair_header(path: Path) -> int:
    """Fix the sizes of a part WAV from its length; return its stereo sample count (0 = unusable)."""
    with open(path, "rb+") as fh:
        header = fh.read(_HEADER_BYTES)
        if (
            len(header) < _HEADER_BYTES
            or header[0:4] != b"RIFF"
            or header[8:12] != b"WAVE"
            or header[12:16] != b"fmt "
            or header[36:40] != b"data"
        ):
            return 0
        channels, _rate, _byte_rate, _align, bits = struct.unpack_from("<HIIHH", header, 22)
        if channels != STEREO_CHANNELS or bits != 8 * SAMPLE_WIDTH:
            return 0
        size = os.fstat(fh.fileno()).st_size
        data = (size - _HEADER_BYTES) // STEREO_SAMPLE_BYTES * STEREO_SAMPLE_BYTES
        if data <= 0:
            return 0
        fh.truncate(_HEADER_BYTES + data)
        fh.seek(4)
        fh.write(struct.pack("<I", 36 + data))
        fh.seek(40)
        fh.write(struct.pack("<I", data))
        fh.flush()
        os.fsync(fh.fileno())
    return data // STEREO_SAMPLE_BYTES


def _load_meta(path: Path, serial: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            meta = json.load(fh)
        if isinstance(meta, dict):
            return meta
    except (OSError, ValueError):
        pass
    return {"serial": serial, "channels": {"left": "caller", "right": "agent"}, "sample_rate": SAMPLE_RATE}


def recover_partials(directory: str | os.PathLike[str]) -> list[Recovered]:
    """Finalise or remove what a crash left in ``directory`` (see the module docstring).

    Raises:
        RecordingError: the directory cannot be listed or a file cannot be renamed.
    """
    root = Path(directory)
    done: list[Recovered] = []
    try:
        if not root.exists():
            return done
        names = sorted(os.listdir(root))
        for name in names:
            if name.startswith(".") and name.endswith(".json.tmp"):
                (root / name).unlink(missing_ok=True)
        for name in names:
            if not (name.startswith(".") and name.endswith(".wav.part")):
                continue
            serial = name[1 : -len(".wav.part")]
            path = root / name
            samples = _repair_header(path)
            if samples == 0:
                path.unlink(missing_ok=True)
                part_json(root, serial).unlink(missing_ok=True)
                done.append(Recovered(serial=serial, action=RecoveryAction.REMOVED, path=path))
                continue
            final = root / f"{serial}.wav"
            os.replace(path, final)
            meta = _load_meta(part_json(root, serial), serial)
            meta.update(ended_at=None, recovered=True, duration_s=samples / SAMPLE_RATE)
            _write_json_atomic(root / f"{serial}.json", meta)
            part_json(root, serial).unlink(missing_ok=True)
            done.append(Recovered(serial=serial, action=RecoveryAction.FINALISED, path=final))
        for name in sorted(os.listdir(root)):
            if not (name.startswith(".") and name.endswith(".json.part")):
                continue
            serial = name[1 : -len(".json.part")]
            path = root / name
            wav = root / f"{serial}.wav"
            if wav.exists() and not (root / f"{serial}.json").exists():
                meta = _load_meta(path, serial)
                with wave.open(str(wav), "rb") as reader:
                    samples = reader.getnframes()
                meta.update(ended_at=None, recovered=True, duration_s=samples / SAMPLE_RATE)
                _write_json_atomic(root / f"{serial}.json", meta)
                path.unlink()
                done.append(Recovered(serial=serial, action=RecoveryAction.FINALISED, path=wav))
            else:
                path.unlink()
                done.append(Recovered(serial=serial, action=RecoveryAction.REMOVED, path=path))
        if done:
            _fsync_dir(root)
    except (OSError, wave.Error) as exc:
        raise RecordingError(f"cannot recover recordings in {root}: {exc}") from exc
    return done
