"""Recording serial numbers: ``YYYYMMDD-<site>-<seq>``, unique and monotonic.

Agents quote serials in QA appeals, so they are short and readable: the calendar day,
the site name (letters and digits only, so the dashes stay unambiguous), and a sequence
number zero-padded to six digits that restarts at 1 each day, e.g. ``20250131-PAR1-000042``.
Within a site, serials sort in allocation order both as strings and as tuples.

:class:`SerialAllocator` is pure: the caller passes the day (its clock, its time zone),
and an injected ``last_seq(day)`` callback says which sequence number was used last on
that day (the recordings index in the database, or :func:`scan_last_seq` over the
recordings directory). The callback is called once per day change, never per call. If
the caller's day goes backwards (clock step), the allocator keeps the later day so the
sequence stays monotonic.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sip.media.errors import SerialError
from sip.media.events import RecordingSerial

_SITE = re.compile(r"[A-Za-z0-9]{1,16}")
_SERIAL = re.compile(r"(\d{8})-([A-Za-z0-9]{1,16})-(\d{6,})")
SEQ_DIGITS = 6


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialParts:
    """A parsed serial."""

    day: date
    site: str
    seq: int


def format_serial(day: date, site: str, seq: int) -> RecordingSerial:
    """Return the serial of sequence ``seq`` on ``day`` at ``site``.

    Raises:
        SerialError: bad site name or a sequence below 1.
    """
    if not _SITE.fullmatch(site):
        raise SerialError(f"site must be 1-16 letters or digits, got {site!r}")
    if seq < 1:
        raise SerialError(f"sequence must be at least 1, got {seq}")
    return RecordingSerial(f"{day:%Y%m%d}-{site}-{seq:0{SEQ_DIGITS}d}")


def parse_serial(serial: str) -> SerialParts:
    """Split a serial into day, site and sequence.

    Raises:
        SerialError: ``serial`` is not ``YYYYMMDD-<site>-<seq>``.
    """
    match = _SERIAL.fullmatch(serial)
    if match is None:
        raise SerialError(f"not a recording serial: {serial!r}")
    try:
        day = date(int(match[1][:4]), int(match[1][4:6]), int(match[1][6:]))
    except ValueError as exc:
        raise SerialError(f"bad date in serial {serial!r}") from exc
    return SerialParts(day=day, site=match[2], seq=int(match[3]))


class SerialAllocator:
    """Hands out serials for one site; see the module docstring for the rules."""

    def __init__(self, *, site: str, last_seq: Callable[[date], int]) -> None:
        format_serial(date(2000, 1, 1), site, 1)  # validates the site name
        self._site = site
        self._last_seq = last_seq
        self._day: date | None = None
        self._seq = 0

    @property
    def site(self) -> str:
        """The site name."""
        return self._site

    def allocate(self, day: date) -> RecordingSerial:
        """Return the next serial for ``day`` (or for the last day seen, if ``day`` is earlier)."""
        if self._day is None or day > self._day:
            self._day = day
            self._seq = max(0, self._last_seq(day))
        self._seq += 1
        return format_serial(self._day, self._site, self._seq)


def scan_last_seq(directory: str | os.PathLike[str], site: str, day: date) -> int:
    """Return the highest sequence used on ``day`` at ``site`` by files in ``directory`` (0 if none).

    Finished recordings (``<serial>.wav``/``.json``) and leftovers (``.<serial>.wav.part``)
    both count. Blocking: call it at start-up or in a thread.
    """
    prefix = f"{day:%Y%m%d}-{site}-"
    best = 0
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return 0
    for name in names:
        stem = name.lstrip(".").split(".", 1)[0]
        if stem.startswith(prefix):
            try:
                parts = parse_serial(stem)
            except SerialError:
                continue
            best = max(best, parts.seq)
    return best
