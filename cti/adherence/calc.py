"""The adherence and conformance calculator (domain.md §3.1–3.3): pure, no clock, no I/O.

Per shift, the two step functions — the plan (the shift's activities; shift time no activity covers is PHONE;
leave and absence override) and the agent's ACD states — are merged into elementary segments (§3.2 step 1); each is
classified IN, OUT or NEUTRAL by the rule table (step 2); approved exceptions, then the tolerance, are applied
(step 3); the seconds are summed (step 4)::

    adherence   = IN / (IN + OUT)                          (NEUTRAL time is left out; None if IN + OUT = 0)
    conformance = productive-state time in the shift / scheduled PHONE time   (may exceed 1; None if nothing planned)

Rules (``Rules``): ``(activity, state, reason)`` is looked up first, then ``(activity, state, None)``; a pair found
nowhere is OUT; a segment with no known state (a data gap) is NEUTRAL; LEAVE and ABSENCE are NEUTRAL whatever the
agent does. Tolerance (``tolerance_s``) applies to each maximal run of OUT time:

- ``GRACE`` (default): a run that starts at a plan boundary (the shift's start or end, or a change of activity) has
  its first ``tol`` seconds counted IN (late switching); one that ends at a boundary, its last ``tol`` seconds
  (early switching). A run touching none keeps every second OUT.
- ``MIN_DURATION``: a run of ``tol`` seconds or less is IN wherever it lies; a longer one counts in full.

An approved exception with an override activity re-plans its span (the rules then judge the state against the
override); an "excused" one (no activity) makes its span IN. Exceptions never change conformance unless
``exceptions_count_as_productive`` is set (then excused or PHONE-override time in scheduled PHONE time that was not
already productive counts as productive).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import assert_never

from cti.adherence.model import PRODUCTIVE, Activity, ApprovedException, ScheduleEntry, StateSpan

__all__ = [
    "DEFAULT_RULES", "PRODUCTIVE_STATES", "AdherenceSettings", "OutSegment", "Rules", "ShiftResult",
    "ToleranceMode", "Verdict", "clipped", "compute_shift", "plan_boundaries", "shifts_of",
]


class Verdict(enum.Enum):
    IN = "in"
    OUT = "out"
    NEUTRAL = "neutral"


class ToleranceMode(enum.Enum):
    GRACE = "grace"
    MIN_DURATION = "min_duration"


PRODUCTIVE_STATES = frozenset({"available", "reserved", "ringing", "on_call", "held", "wrap_up"})
"""ACD states that are phone work (domain.md §3.1: READY, RINGING, TALKING, HOLD, ACW)."""

RuleKey = tuple[Activity, str, str | None]
Rules = Mapping[RuleKey, Verdict]


def _default_rules() -> dict[RuleKey, Verdict]:
    rules: dict[RuleKey, Verdict] = {(Activity.PHONE, s, None): Verdict.IN for s in PRODUCTIVE_STATES}
    for activity, reason in ((Activity.BREAK, "break"), (Activity.LUNCH, "lunch"), (Activity.MEETING, "meeting"),
                             (Activity.TRAINING, "training"), (Activity.OFFLINE_WORK, "offline_work")):
        rules[(activity, "paused", reason)] = Verdict.IN
    rules[(Activity.BREAK, "logged_out", None)] = Verdict.IN
    rules[(Activity.LUNCH, "logged_out", None)] = Verdict.IN
    return rules


DEFAULT_RULES: Mapping[RuleKey, Verdict] = _default_rules()


@dataclass(frozen=True, slots=True, kw_only=True)
class AdherenceSettings:
    """domain.md §6 defaults: tolerance 5 min, grace mode."""

    tolerance_s: float = 300.0
    tolerance_mode: ToleranceMode = ToleranceMode.GRACE
    exceptions_count_as_productive: bool = False
    rules: Rules = field(default_factory=lambda: DEFAULT_RULES)

    def verdict(self, activity: Activity, state: str | None, reason: str | None) -> Verdict:
        if activity in (Activity.LEAVE, Activity.ABSENCE) or state is None:
            return Verdict.NEUTRAL
        found = self.rules.get((activity, state, reason))
        if found is None:
            found = self.rules.get((activity, state, None))
        return Verdict.OUT if found is None else found


@dataclass(frozen=True, slots=True, kw_only=True)
class OutSegment:
    """A maximal run of raw OUT time, with what was planned and what the agent did at its start.

    ``counted_s`` is the part still OUT after exceptions and tolerance; ``excused_s`` the part an approved
    exception turned IN; ``tolerated_s`` the part the tolerance forgave.
    """

    start: float
    end: float
    activity: Activity
    state: str
    reason: str | None
    counted_s: float
    excused_s: float
    tolerated_s: float
    counted: tuple[tuple[float, float], ...] = ()
    """Where the counted seconds lie: ``(start, end)`` spans inside the run."""

    @property
    def duration_s(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True, kw_only=True)
class ShiftResult:
    """Adherence of one shift, raw (no exceptions, no tolerance) and adjusted (both applied)."""

    agent_id: str
    start: float
    end: float
    in_s: float
    out_s: float
    neutral_s: float
    raw_in_s: float
    raw_out_s: float
    scheduled_productive_s: float
    productive_s: float
    segments: tuple[OutSegment, ...]

    @property
    def adherence(self) -> float | None:
        total = self.in_s + self.out_s
        return None if total <= 0 else self.in_s / total

    @property
    def raw_adherence(self) -> float | None:
        total = self.raw_in_s + self.raw_out_s
        return None if total <= 0 else self.raw_in_s / total

    @property
    def conformance(self) -> float | None:
        return None if self.scheduled_productive_s <= 0 else self.productive_s / self.scheduled_productive_s


@dataclass(slots=True)
class _Piece:
    start: float
    end: float
    planned: Activity
    state: str | None
    reason: str | None
    raw: Verdict
    adjusted: Verdict  # after exceptions (tolerance comes after, on runs)
    exception: ApprovedException | None


def shifts_of(entries: Iterable[ScheduleEntry]) -> list[ScheduleEntry]:
    """The shifts among ``entries``, in time order."""
    return sorted((e for e in entries if e.activity is Activity.SHIFT), key=lambda e: (e.start, e.agent_id))


def _covering(spans: Sequence[tuple[float, float, object]], a: float, b: float) -> object | None:
    for start, end, value in spans:
        if start <= a and b <= end:
            return value
    return None


def plan_boundaries(shift: ScheduleEntry, entries: Iterable[ScheduleEntry]) -> list[tuple[float, float, Activity]]:
    """The plan inside ``shift`` as contiguous ``(start, end, activity)`` steps (PHONE fills the gaps;
    leave and absence override what they cover)."""
    inside = [e for e in entries if e.agent_id == shift.agent_id and e.end > shift.start and e.start < shift.end
              and e.activity is not Activity.SHIFT]
    cuts = {shift.start, shift.end}
    for e in inside:
        cuts.update({max(e.start, shift.start), min(e.end, shift.end)})
    points = sorted(cuts)
    leave = [(e.start, e.end, e.activity) for e in inside if e.activity in (Activity.LEAVE, Activity.ABSENCE)]
    work = [(e.start, e.end, e.activity) for e in inside if e.activity not in (Activity.LEAVE, Activity.ABSENCE)]
    steps: list[tuple[float, float, Activity]] = []
    for a, b in zip(points, points[1:], strict=False):
        found = _covering(leave, a, b) or _covering(work, a, b) or Activity.PHONE
        assert isinstance(found, Activity)
        if steps and steps[-1][2] is found and steps[-1][1] == a:
            steps[-1] = (steps[-1][0], b, found)
        else:
            steps.append((a, b, found))
    return steps


def compute_shift(shift: ScheduleEntry, entries: Iterable[ScheduleEntry], states: Iterable[StateSpan],
                  exceptions: Iterable[ApprovedException] = (),
                  settings: AdherenceSettings = AdherenceSettings()) -> ShiftResult:
    """Adherence and conformance of one shift (see the module docstring).

    ``states`` are the agent's state spans (any that overlap the shift; they must not overlap each other, as the
    agent-state history guarantees); time inside the shift that no span covers is a data gap (NEUTRAL).
    """
    if shift.activity is not Activity.SHIFT:
        raise ValueError("compute_shift needs a shift entry")
    entries = list(entries)
    plan = plan_boundaries(shift, entries)
    lo, hi = shift.start, shift.end
    state_spans = sorted((max(s.start, lo), min(s.end, hi), s) for s in states if s.end > lo and s.start < hi)
    excepts = sorted((max(x.start, lo), min(x.end, hi), x) for x in exceptions
                     if x.agent_id == shift.agent_id and x.end > lo and x.start < hi)
    cuts = {lo, hi}
    for a, b, _ in plan:
        cuts.update((a, b))
    for a, b, _s in state_spans:
        cuts.update((a, b))
    for a, b, _x in excepts:
        cuts.update((a, b))
    points = sorted(cuts)
    pieces: list[_Piece] = []
    for a, b in zip(points, points[1:], strict=False):
        if b <= a:
            continue
        planned = next(act for (pa, pb, act) in plan if pa <= a and b <= pb)
        span = _covering([(x, y, s) for x, y, s in state_spans], a, b)
        state = span.state if isinstance(span, StateSpan) else None
        reason = span.reason if isinstance(span, StateSpan) else None
        raw = settings.verdict(planned, state, reason)
        exc = _covering([(x, y, e) for x, y, e in excepts], a, b)
        adjusted = raw
        exception = exc if isinstance(exc, ApprovedException) else None
        if exception is not None:
            adjusted = (Verdict.IN if exception.activity is None
                        else settings.verdict(exception.activity, state, reason))
        pieces.append(_Piece(a, b, planned, state, reason, raw, adjusted, exception))
    boundaries = {p for step in plan for p in step[:2]}
    segments = _out_segments(pieces, boundaries, settings)
    raw_out = sum(p.end - p.start for p in pieces if p.raw is Verdict.OUT)
    raw_in = sum(p.end - p.start for p in pieces if p.raw is Verdict.IN)
    neutral = sum(p.end - p.start for p in pieces if p.adjusted is Verdict.NEUTRAL)
    out = sum(s.counted_s for s in segments)
    total = sum(p.end - p.start for p in pieces)
    scheduled_productive = sum(b - a for a, b, act in plan if act in PRODUCTIVE)
    productive = 0.0
    for p in pieces:
        if p.state in PRODUCTIVE_STATES:
            productive += p.end - p.start
        elif (settings.exceptions_count_as_productive and p.planned in PRODUCTIVE and p.exception is not None
              and (p.exception.activity is None or p.exception.activity in PRODUCTIVE)):
            productive += p.end - p.start
    return ShiftResult(agent_id=shift.agent_id, start=lo, end=hi, in_s=total - neutral - out, out_s=out,
                       neutral_s=neutral, raw_in_s=raw_in, raw_out_s=raw_out,
                       scheduled_productive_s=scheduled_productive, productive_s=productive,
                       segments=tuple(segments))


def _out_segments(pieces: list[_Piece], boundaries: set[float], settings: AdherenceSettings) -> list[OutSegment]:
    """Runs of raw OUT pieces, with the exception and tolerance shares worked out."""
    runs: list[list[_Piece]] = []
    for piece in pieces:
        if piece.raw is not Verdict.OUT:
            continue
        if runs and runs[-1][-1].end == piece.start:
            runs[-1].append(piece)
        else:
            runs.append([piece])
    out: list[OutSegment] = []
    tol = settings.tolerance_s
    for run in runs:
        start, end = run[0].start, run[-1].end
        excused = sum(p.end - p.start for p in run if p.adjusted is not Verdict.OUT)
        # the tolerance applies to what is still OUT after the exceptions: its own maximal runs
        sub_runs: list[tuple[float, float]] = []
        for p in run:
            if p.adjusted is not Verdict.OUT:
                continue
            if sub_runs and sub_runs[-1][1] == p.start:
                sub_runs[-1] = (sub_runs[-1][0], p.end)
            else:
                sub_runs.append((p.start, p.end))
        tolerated = 0.0
        spans: list[tuple[float, float]] = []
        for a, b in sub_runs:
            head, tail = _forgiven(a, b, boundaries, tol, settings.tolerance_mode)
            tolerated += head + tail
            if b - tail > a + head:
                spans.append((a + head, b - tail))
        first = run[0]
        out.append(OutSegment(start=start, end=end, activity=first.planned, state=first.state or "unknown",
                              reason=first.reason, counted_s=sum(y - x for x, y in spans), excused_s=excused,
                              tolerated_s=tolerated, counted=tuple(spans)))
    return out


def _forgiven(a: float, b: float, boundaries: set[float], tol: float,
              mode: ToleranceMode) -> tuple[float, float]:
    """Seconds forgiven at the start and at the end of an OUT run ``[a, b)``."""
    length = b - a
    if tol <= 0:
        return 0.0, 0.0
    match mode:
        case ToleranceMode.MIN_DURATION:
            return (length, 0.0) if length <= tol else (0.0, 0.0)
        case ToleranceMode.GRACE:
            head = min(tol, length) if a in boundaries else 0.0
            tail = min(tol, length - head) if b in boundaries else 0.0
            return head, tail
    assert_never(mode)


def clipped(states: Iterable[StateSpan], start: float, end: float) -> list[StateSpan]:
    """``states`` cut to ``[start, end)`` (spans outside dropped)."""
    return [replace(s, start=max(s.start, start), end=min(s.end, end)) for s in states
            if s.end > start and s.start < end]
