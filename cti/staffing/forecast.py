"""Forecast to staffing: an interval volume file (``interval,calls,aht_s``) to required agents per interval.

The file is CSV (RFC 4180, UTF-8, an optional BOM) whose header names the columns ``interval``, ``calls`` and
``aht_s`` (in any order; other columns are refused so that a misspelt one is not silently ignored). ``interval``
is a label (``2024-05-06 09:00``, ``09:00``...) that must be unique; blank lines and lines starting with ``#``
are skipped. Every interval has the length and targets of the template :class:`StaffingInput`.

The whole file is checked before anything is planned: a bad file raises :class:`ForecastFileError` listing
``file:line: reason`` for every wrong line. Pure: the caller reads the file and passes its text.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, replace
from typing import Any

from cti.staffing.errors import ForecastFileError, ForecastProblem, StaffingInputError
from cti.staffing.plan import StaffingInput, StaffingResult, required_agents

__all__ = ["COLUMNS", "MAX_FORECAST_ROWS", "ForecastRow", "forecast_to_json", "parse_forecast", "plan_forecast"]

COLUMNS: tuple[str, ...] = ("interval", "calls", "aht_s")
MAX_FORECAST_ROWS: int = 10_000
_MAX_PROBLEMS = 50  # a file that is wrong everywhere is reported by its first 50 problems


@dataclass(frozen=True, slots=True, kw_only=True)
class ForecastRow:
    """One interval of the forecast, with the line it came from."""

    interval: str
    calls: float
    aht_s: float
    line: int


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_forecast(text: str, source: str) -> list[ForecastRow]:
    """The rows of a volume file's ``text``; ``source`` names it in problems (a path, "request body").

    Raises:
        ForecastFileError: anything wrong, with file, line and reason for each problem.
    """
    problems: list[ForecastProblem] = []

    def refuse(line: int, reason: str) -> None:
        if len(problems) < _MAX_PROBLEMS:
            problems.append(ForecastProblem(file=source, line=line, reason=reason))

    text = text.removeprefix("\ufeff")
    rows: list[ForecastRow] = []
    seen: dict[str, int] = {}
    header: list[str] | None = None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for cells in reader:
            line = reader.line_num
            if not any(c.strip() for c in cells) or cells[0].lstrip().startswith("#"):
                continue
            cells = [c.strip() for c in cells]
            if header is None:
                header = [c.lower() for c in cells]
                missing = [c for c in COLUMNS if c not in header]
                extra = [c for c in header if c not in COLUMNS]
                if missing or extra or len(set(header)) != len(header):
                    refuse(line, f"the header must name the columns {', '.join(COLUMNS)} once each "
                                 f"(got {', '.join(cells)})")
                    break
                continue
            if len(cells) != len(header):
                refuse(line, f"{len(cells)} fields where the header has {len(header)}")
                continue
            row = dict(zip(header, cells, strict=True))
            label, calls, aht = row["interval"], _number(row["calls"]), _number(row["aht_s"])
            if not label:
                refuse(line, "the interval label is empty")
            elif label in seen:
                refuse(line, f"interval {label!r} is already on line {seen[label]}")
            else:
                seen[label] = line
            if calls is None or calls < 0:
                refuse(line, f"calls must be a number >= 0, got {row['calls']!r}")
            if aht is None or aht <= 0:
                refuse(line, f"aht_s must be a number of seconds > 0, got {row['aht_s']!r}")
            if calls is not None and aht is not None:
                rows.append(ForecastRow(interval=label, calls=calls, aht_s=aht, line=line))
            if len(seen) > MAX_FORECAST_ROWS:
                refuse(line, f"more than {MAX_FORECAST_ROWS} intervals")
                break
    except csv.Error as exc:
        refuse(reader.line_num, f"not valid CSV: {exc}")
    if not problems and header is None:
        refuse(0, f"empty: the file needs a header ({','.join(COLUMNS)}) and one line per interval")
    elif not problems and not rows:
        refuse(0, "no intervals after the header")
    if problems:
        raise ForecastFileError(problems)
    return rows


def plan_forecast(rows: list[ForecastRow], template: StaffingInput, source: str) -> list[StaffingResult]:
    """Required agents for each row: ``template`` gives the interval length, targets, model and shrinkage; its
    ``calls`` and ``aht_s`` are replaced by each row's.

    Raises:
        ForecastFileError: a row's load cannot be planned (too large, queue does not settle), with its line.
    """
    results = []
    problems = []
    for row in rows:
        try:
            results.append(required_agents(replace(template, calls=row.calls, aht_s=row.aht_s), what_if_span=0))
        except StaffingInputError as exc:
            problems.append(ForecastProblem(file=source, line=row.line, reason=str(exc)))
    if problems:
        raise ForecastFileError(problems[:_MAX_PROBLEMS])
    return results


def forecast_to_json(rows: list[ForecastRow], results: list[StaffingResult]) -> dict[str, Any]:
    """The JSON object of ``cti staffing --forecast FILE --json`` and ``POST /api/v1/staffing/forecast``: the
    shared inputs once, then one object per interval (the single-interval fields without ``inputs`` and
    ``what_if``), and the peak."""
    intervals = []
    for row, result in zip(rows, results, strict=True):
        one = result.to_json()
        inputs = one.pop("inputs")
        del one["what_if"]
        intervals.append({"interval": row.interval, "calls": row.calls, "aht_s": row.aht_s, **one})
    peak = max(range(len(rows)), key=lambda i: results[i].agents_scheduled)
    return {"model": results[peak].inputs.model.value,
            "inputs": {k: v for k, v in inputs.items() if k not in ("calls", "aht_s")},
            "intervals": intervals,
            "peak": {"interval": rows[peak].interval, "agents": results[peak].agents,
                     "agents_scheduled": results[peak].agents_scheduled},
            "agent_intervals_scheduled": sum(r.agents_scheduled for r in results)}
