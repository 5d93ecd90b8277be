"""Serial allocation: format, monotonicity, day change, injected store, directory scan."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from sip.media.errors import SerialError
from sip.media.serial import SerialAllocator, format_serial, parse_serial, scan_last_seq

D1, D2 = date(2025, 1, 31), date(2025, 2, 1)


def test_format_and_parse() -> None:
    serial = format_serial(D1, "PAR1", 42)
    assert serial == "20250131-PAR1-000042"
    parts = parse_serial(serial)
    assert (parts.day, parts.site, parts.seq) == (D1, "PAR1", 42)
    assert parse_serial("20250131-X-1234567").seq == 1234567
    for bad in ("2025013-PAR1-000001", "20251331-PAR1-000001", "20250131-P-R-000001", "x"):
        with pytest.raises(SerialError):
            parse_serial(bad)
    with pytest.raises(SerialError):
        format_serial(D1, "bad-site", 1)


def test_allocator_uses_store_once_per_day_and_is_monotonic() -> None:
    calls: list[date] = []

    def last_seq(day: date) -> int:
        calls.append(day)
        return 41 if day == D1 else 0

    alloc = SerialAllocator(site="PAR1", last_seq=last_seq)
    got = [alloc.allocate(D1) for _ in range(3)]
    assert got == ["20250131-PAR1-000042", "20250131-PAR1-000043", "20250131-PAR1-000044"]
    assert alloc.allocate(D2) == "20250201-PAR1-000001"
    assert alloc.allocate(D1) == "20250201-PAR1-000002"  # clock went back: keep the later day
    assert calls == [D1, D2]
    serials = got + ["20250201-PAR1-000001", "20250201-PAR1-000002"]
    assert serials == sorted(serials) and len(set(serials)) == len(serials)


def test_allocator_rejects_bad_site() -> None:
    with pytest.raises(SerialError):
        SerialAllocator(site="", last_seq=lambda _d: 0)


def test_scan_last_seq(tmp_path: Path) -> None:
    assert scan_last_seq(tmp_path / "missing", "PAR1", D1) == 0
    for name in (
        "20250131-PAR1-000003.wav",
        "20250131-PAR1-000003.json",
        ".20250131-PAR1-000009.wav.part",
        "20250131-PAR10-000050.wav",
        "20250130-PAR1-000070.wav",
        "notes.txt",
    ):
        (tmp_path / name).write_bytes(b"")
    assert scan_last_seq(tmp_path, "PAR1", D1) == 9
    alloc = SerialAllocator(site="PAR1", last_seq=lambda day: scan_last_seq(tmp_path, "PAR1", day))
    assert alloc.allocate(D1) == "20250131-PAR1-000010"
