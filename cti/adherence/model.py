"""The schedule model of adherence (domain.md §3): activities, scheduled spans, approved exceptions, state spans.

Everything is UTC epoch seconds (the site's time zone only matters when files are read and days are cut, see
:mod:`cti.adherence.importers` and :mod:`cti.adherence.reports`). Records are frozen dataclasses validated in
``__post_init__``; a bad one raises :class:`ScheduleError` (never a bare ``ValueError``).

Errors::

    AdherenceError                 base, ``code`` is stable for API answers
     ├── ScheduleError             a schedule entry or exception that cannot be (bad times, overlap, outside a shift)
     └── ImportFileError           a schedule file was refused: ``problems`` lists file, line and reason
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from config.errors import Problem  # one located-problem type for config and import files
from cti.errors import CtiError

__all__ = [
    "PRODUCTIVE", "WORK_ACTIVITIES", "Activity", "AdherenceError", "ApprovedException", "ImportFileError",
    "Problem", "ScheduleEntry", "ScheduleError", "StateSpan",
]


class AdherenceError(CtiError):
    """Base class of the adherence errors."""

    code = "adherence.error"


class ScheduleError(AdherenceError):
    """A schedule entry or approved exception that cannot be stored as given (the message says why)."""

    code = "adherence.schedule_invalid"


class ImportFileError(AdherenceError):
    """A schedule file was refused as a whole (nothing of it is stored); ``problems`` says where and why."""

    code = "adherence.import_invalid"

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(str(p) for p in problems[:5]) + (" ..." if len(problems) > 5 else ""))
        self.problems = problems


class Activity(enum.Enum):
    """What a schedule plans. ``SHIFT`` is the frame: shift time no activity covers is ``PHONE``."""

    SHIFT = "shift"
    PHONE = "phone"
    BREAK = "break"
    LUNCH = "lunch"
    MEETING = "meeting"
    TRAINING = "training"
    OFFLINE_WORK = "offline_work"
    LEAVE = "leave"
    ABSENCE = "absence"


WORK_ACTIVITIES = frozenset({Activity.PHONE, Activity.BREAK, Activity.LUNCH, Activity.MEETING, Activity.TRAINING,
                             Activity.OFFLINE_WORK})
"""Activities that live inside a shift."""
PRODUCTIVE = frozenset({Activity.PHONE})
"""Scheduled productive (on-queue) activities: the denominator of conformance."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleEntry:
    """One planned span of one agent: a shift, an activity inside a shift, or leave/absence."""

    agent_id: str
    start: float
    end: float
    activity: Activity
    note: str | None = None
    entry_id: int | None = None

    def __post_init__(self) -> None:
        if not self.agent_id:
            raise ScheduleError("a schedule entry needs an agent")
        if not self.end > self.start:
            raise ScheduleError(f"{self.activity.value} of {self.agent_id}: end must be after start")
        if self.end - self.start > 24 * 3600 and self.activity not in (Activity.LEAVE, Activity.ABSENCE):
            raise ScheduleError(f"{self.activity.value} of {self.agent_id}: longer than 24 h")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovedException:
    """A supervisor-authorised exception (domain.md §3.1): during ``[start, end)`` the schedule is read as
    ``activity`` (an override), or, with ``activity`` None ("excused"), every moment is in adherence."""

    agent_id: str
    start: float
    end: float
    reason: str
    approved_by: str
    approved_at: float
    activity: Activity | None = None
    exception_id: int | None = None

    def __post_init__(self) -> None:
        if not self.agent_id or not self.reason or not self.approved_by:
            raise ScheduleError("an approved exception needs an agent, a reason and who approved it")
        if not self.end > self.start:
            raise ScheduleError("an approved exception's end must be after its start")
        if self.activity is Activity.SHIFT:
            raise ScheduleError("an exception overrides with an activity, not a shift")


@dataclass(frozen=True, slots=True, kw_only=True)
class StateSpan:
    """What the agent was doing: an ACD state (``acd.AgentState`` value) and its not-ready reason."""

    start: float
    end: float
    state: str
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ScheduleError("a state span cannot end before it starts")
