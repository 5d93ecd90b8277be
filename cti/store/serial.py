"""Recording serial numbers: ``YYYYMMDD-<site>-<seq>`` (design.md "Recordings", domain.md §0).

A serial is what an agent quotes in a QA appeal, so it is short, readable over the phone and
never reused: the day is the UTC day the recording started, ``site`` names the node or site that
allocated it (lower-case letters and digits, no hyphen, so the three parts split unambiguously),
and ``seq`` counts from 1 per site and day, zero-padded to at least four digits (it simply grows
wider past 9999). Pure functions only; allocation lives in the store (``allocate_serial``).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cti.ids import RecordingSerial
from cti.store.errors import InvalidRecordError

_SITE = re.compile(r"[a-z0-9]{1,16}")
_SERIAL = re.compile(r"(?P<day>[0-9]{8})-(?P<site>[a-z0-9]{1,16})-(?P<seq>[0-9]{4,12})")


@dataclass(frozen=True, slots=True, kw_only=True)
class SerialParts:
    """The three parts of a serial number."""

    day: dt.date
    site: str
    seq: int


def check_site(site: str) -> str:
    """Return ``site`` if it is a valid site name.

    Raises:
        InvalidRecordError: not 1-16 lower-case letters or digits.
    """
    if not _SITE.fullmatch(site):
        raise InvalidRecordError(f"site must be 1-16 lower-case letters or digits, got {site!r}")
    return site


def format_serial(site: str, day: dt.date, seq: int) -> RecordingSerial:
    """Build the serial for sequence number ``seq`` (≥ 1) of ``site`` on ``day``.

    Raises:
        InvalidRecordError: bad site name or a sequence number below 1.
    """
    check_site(site)
    if seq < 1:
        raise InvalidRecordError(f"serial sequence numbers start at 1, got {seq}")
    return RecordingSerial(f"{day:%Y%m%d}-{site}-{seq:04d}")


def parse_serial(serial: str) -> SerialParts:
    """Split a serial into its parts.

    Raises:
        InvalidRecordError: the text is not a well-formed serial.
    """
    match = _SERIAL.fullmatch(serial)
    if match is None:
        raise InvalidRecordError(f"not a recording serial (YYYYMMDD-site-seq): {serial!r}")
    try:
        day = dt.datetime.strptime(match["day"], "%Y%m%d").date()
    except ValueError as exc:
        raise InvalidRecordError(f"serial {serial!r} has an impossible date") from exc
    seq = int(match["seq"])
    if seq < 1:
        raise InvalidRecordError(f"serial {serial!r} has sequence number 0")
    return SerialParts(day=day, site=match["site"], seq=seq)
