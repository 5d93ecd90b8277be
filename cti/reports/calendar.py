"""Report buckets in the site's time zone (domain.md §0 "Interval", config ``node.timezone``).

A report covers ``[start, end)`` (UTC epoch seconds) cut into buckets that begin on local wall-clock
boundaries: 15, 30 or 60 minutes, a day (local midnight), a week (Monday 00:00) or a month (the 1st,
00:00). Boundaries are computed on local dates and converted back, so a day across a daylight-saving
change is 23 or 25 hours long and a 30-minute bucket never straddles the jump. Pure: no clock.
"""

from __future__ import annotations

import bisect
import datetime as dt
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = ["Bucket", "Period", "bucket_index", "buckets", "local_day_bounds", "parse_period"]


class Period(enum.Enum):
    """Bucket length of a report."""

    MIN15 = "15m"
    MIN30 = "30m"
    MIN60 = "60m"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def minutes(self) -> int | None:
        """Length in minutes for the sub-day periods, None for calendar periods."""
        return {Period.MIN15: 15, Period.MIN30: 30, Period.MIN60: 60}.get(self)


_ALIASES = {"15m": Period.MIN15, "15min": Period.MIN15, "30m": Period.MIN30, "30min": Period.MIN30,
            "60m": Period.MIN60, "60min": Period.MIN60, "1h": Period.MIN60, "day": Period.DAY, "1d": Period.DAY,
            "week": Period.WEEK, "month": Period.MONTH}


def parse_period(text: str) -> Period:
    """``15m``/``30m``/``60m`` (or ``1h``), ``day``, ``week``, ``month``.

    Raises:
        ValueError: anything else (the message lists the accepted values).
    """
    try:
        return _ALIASES[text.strip().lower()]
    except KeyError:
        raise ValueError(f"interval must be one of 15m, 30m, 60m, day, week, month; got {text!r}") from None


@dataclass(frozen=True, slots=True)
class Bucket:
    """One report interval: ``[start, end)`` in epoch seconds and its local start as ISO text."""

    start: float
    end: float
    label: str


def _local(ts: float, zone: ZoneInfo) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, zone)


def _floor(local: dt.datetime, period: Period) -> dt.datetime:
    """The local start of the bucket holding ``local`` (a naive wall-clock time)."""
    minutes = period.minutes
    if minutes is not None:
        return local.replace(minute=local.minute - local.minute % minutes, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period is Period.DAY:
        return day
    if period is Period.WEEK:
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1)


def _next(local: dt.datetime, period: Period) -> dt.datetime:
    minutes = period.minutes
    if minutes is not None:
        return local + dt.timedelta(minutes=minutes)
    if period is Period.DAY:
        return local + dt.timedelta(days=1)
    if period is Period.WEEK:
        return local + dt.timedelta(days=7)
    return (local.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _to_epoch_naive(naive: dt.datetime, zone: ZoneInfo) -> float:
    """Epoch of a naive local time; a time skipped by a DST jump maps to the jump itself."""
    return naive.replace(tzinfo=zone, fold=0).timestamp()


def buckets(start: float, end: float, period: Period, zone: ZoneInfo) -> list[Bucket]:
    """The buckets covering ``[start, end)``; the first and last are clipped to the range.

    Sub-day buckets are stepped in UTC from the first local boundary (so an hour repeated by a DST
    change gives two buckets and a skipped hour none); calendar buckets are stepped on local dates.
    """
    if end <= start:
        return []
    out: list[Bucket] = []
    first = _floor(_local(start, zone).replace(tzinfo=None), period)
    if period.minutes is not None:
        step = period.minutes * 60.0
        # A DST jump moves the offset by whole half hours or hours: stepping in UTC from the first local
        # boundary stays on local boundaries on both sides of it.
        cursor = _to_epoch_naive(first, zone)
        if cursor > start:  # ``first`` fell in a skipped hour
            cursor -= step * math.ceil((cursor - start) / step)
        while cursor < end:
            b_end = cursor + step
            label = _local(cursor, zone).isoformat(timespec="minutes")
            out.append(Bucket(max(cursor, start), min(b_end, end), label))
            cursor = b_end
        return out
    local = first
    while True:
        b_start = _to_epoch_naive(local, zone)
        nxt = _next(local, period)
        b_end = _to_epoch_naive(nxt, zone)
        if b_start >= end:
            break
        out.append(Bucket(max(b_start, start), min(b_end, end), local.date().isoformat()))
        local = nxt
    return out


def bucket_index(starts: Sequence[float], ts: float) -> int | None:
    """Index of the bucket (given by its ``start`` list, sorted) holding ``ts``; None if before the first."""
    i = bisect.bisect_right(starts, ts) - 1
    return i if i >= 0 else None


def local_day_bounds(day: dt.date, zone: ZoneInfo) -> tuple[float, float]:
    """``[start, end)`` epoch seconds of the local ``day`` (23 or 25 hours across a DST change)."""
    start = dt.datetime.combine(day, dt.time(), zone)
    return start.timestamp(), dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), zone).timestamp()
