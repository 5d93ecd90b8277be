"""Schedule adherence (遵时) and conformance (domain.md §3, docs/adherence.md).

The calculator (:mod:`cti.adherence.calc`) and the live tracker (:mod:`cti.adherence.tracker`) are sans-I/O; the
importers read CSV and iCalendar schedule files; :mod:`cti.adherence.store` keeps schedules and approved
exceptions in the node's database; :mod:`cti.adherence.service` is the asyncio adapter on the bus.
"""

from cti.adherence.calc import (
    DEFAULT_RULES,
    PRODUCTIVE_STATES,
    AdherenceSettings,
    OutSegment,
    Rules,
    ShiftResult,
    ToleranceMode,
    Verdict,
    clipped,
    compute_shift,
    plan_boundaries,
    shifts_of,
)
from cti.adherence.model import (
    PRODUCTIVE,
    WORK_ACTIVITIES,
    Activity,
    AdherenceError,
    ApprovedException,
    ImportFileError,
    Problem,
    ScheduleEntry,
    ScheduleError,
    StateSpan,
)

__all__ = [
    "DEFAULT_RULES", "PRODUCTIVE", "PRODUCTIVE_STATES", "WORK_ACTIVITIES", "Activity", "AdherenceError",
    "AdherenceSettings", "ApprovedException", "ImportFileError", "OutSegment", "Problem", "Rules", "ScheduleEntry",
    "ScheduleError", "ShiftResult", "StateSpan", "ToleranceMode", "Verdict", "clipped", "compute_shift",
    "plan_boundaries", "shifts_of",
]
