"""Live adherence: the tracker core on a clock stepped by hand, the bus service on a real store, the gateway board."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from acd import AgentId, AgentState
from cti.adherence import Activity, AdherenceSettings, ApprovedException, ScheduleEntry, ToleranceMode
from cti.adherence.board import AdherenceBoard
from cti.adherence.importers import parse_schedule_file
from cti.adherence.service import AdherenceService
from cti.adherence.tracker import AdherenceTracker, ExceptionEnded, ExceptionRaised
from cti.events.bus import Bus
from cti.events.registry import Envelope, validate
from cti.store import Store

M = 60.0
T0 = dt.datetime(2026, 5, 9, 9, 0, tzinfo=dt.UTC).timestamp()


def plan(agent: str = "1001") -> list[ScheduleEntry]:
    return [ScheduleEntry(agent_id=agent, start=T0, end=T0 + 180 * M, activity=Activity.SHIFT),
            ScheduleEntry(agent_id=agent, start=T0 + 90 * M, end=T0 + 105 * M, activity=Activity.BREAK)]


def test_alert_only_past_the_tolerance_and_ended_on_return() -> None:
    tracker = AdherenceTracker(AdherenceSettings(tolerance_s=5 * M))
    now = T0 - 3 * M
    assert tracker.state_changed("1001", "available", None, now) == []
    assert tracker.set_plan("1001", plan(), [], now) == []
    now = T0 + 40 * M
    assert tracker.state_changed("1001", "paused", "personal", now) == []  # out, within tolerance
    assert tracker.get_timer(now) == now + 5 * M + 1
    assert tracker.handle_timer(now + 5 * M) == []  # exactly the tolerance: not longer than it
    raised = tracker.handle_timer(now + 5 * M + 1)
    assert raised == [ExceptionRaised(agent_id="1001", activity=Activity.PHONE, state="paused", reason="personal",
                                      out_since=now, tolerance_s=300.0, at=now + 301)]
    assert tracker.handle_timer(now + 6 * M) == []  # raised once
    back = tracker.state_changed("1001", "available", None, now + 12 * M)
    assert back == [ExceptionEnded(agent_id="1001", out_since=now, at=now + 12 * M, verdict=back[0].verdict)]
    assert back[0].verdict.value == "in"


def test_short_deviation_never_alerts_and_boundaries_are_timers() -> None:
    tracker = AdherenceTracker(AdherenceSettings(tolerance_s=5 * M, tolerance_mode=ToleranceMode.MIN_DURATION))
    tracker.set_plan("1001", plan(), [], T0)
    tracker.state_changed("1001", "on_call", None, T0)
    assert tracker.get_timer(T0 + M) == T0 + 90 * M  # the break starts: re-judge there
    # the call runs 3 min into the break: out, but back within the tolerance
    assert tracker.handle_timer(T0 + 90 * M) == []
    assert tracker.agents["1001"].verdict.value == "out"
    assert tracker.state_changed("1001", "paused", "break", T0 + 93 * M) == []
    assert tracker.agents["1001"].out_since is None
    # late back from the break: 7 min -> alert at 5 min + 1 s past the break end
    assert tracker.handle_timer(T0 + 105 * M) == []
    events = tracker.handle_timer(T0 + 110 * M + 1)
    assert [type(e) for e in events] == [ExceptionRaised] and events[0].activity is Activity.PHONE


def test_approved_exception_silences_and_outside_shift_is_not_judged() -> None:
    tracker = AdherenceTracker()
    escort = ApprovedException(agent_id="1001", start=T0 + 30 * M, end=T0 + 60 * M, reason="escort a visitor",
                               approved_by="sup1", approved_at=T0)
    tracker.set_plan("1001", plan(), [escort], T0)
    assert tracker.state_changed("1001", "logged_out", None, T0 + 30 * M) == []
    assert tracker.handle_timer(T0 + 50 * M) == []  # excused
    events = tracker.handle_timer(T0 + 66 * M + 1)  # the exception ended at 60: out since then, > 5 min
    assert [type(e) for e in events] == [ExceptionRaised] and events[0].out_since == T0 + 60 * M
    ended = tracker.handle_timer(T0 + 180 * M)  # the shift ended
    assert [type(e) for e in ended] == [ExceptionEnded] and ended[0].verdict.value == "neutral"


async def test_service_publishes_valid_events_from_bus_input(store: Store) -> None:
    bus = Bus()
    clock = [T0 - 10 * M]
    service = AdherenceService(bus, store, "node-a", clock=lambda: clock[0])
    csv = b"agent,date,start,end,activity\n1001,2026-05-09,09:00,12:00,shift\n1001,2026-05-09,10:30,10:45,break\n"
    entries = parse_schedule_file(csv, "day.csv", ZoneInfo("UTC"))
    await service.schedules.import_entries(entries, "day.csv", clock[0])
    await store.record_agent_state(AgentId("1001"), AgentState.AVAILABLE, T0 - 20 * M)
    watch = bus.subscribe(("adherence.*",), maxsize=100, name="test")
    await service.reload()
    assert service.tracker.agents["1001"].state == "available"  # from the agent-state history
    clock[0] = T0 + 40 * M
    change = Envelope.new("agent.state_changed", {"agent_id": "1001", "state": "paused", "previous_state":
                                                  "available", "reason": "personal", "call_id": None},
                          node="node-a", now=clock[0])
    assert service.handle(change, clock[0]) == []
    clock[0] += 5 * M + 1
    timer = service.tracker.get_timer(clock[0])
    assert timer is not None and timer <= clock[0]
    [raised] = service.handle_timer(clock[0])
    validate(raised, strict=True)
    assert raised.type == "adherence.exception" and raised.data["out_seconds"] == 301
    assert watch.get_nowait() == raised
    board = AdherenceBoard()
    board.observe(raised)
    assert [a["agent_id"] for a in board.active()] == ["1001"]
    clock[0] += 60
    back = Envelope.new("agent.state_changed", {"agent_id": "1001", "state": "available", "previous_state":
                                                "paused", "reason": None, "call_id": None},
                        node="node-a", now=clock[0])
    [ended] = service.handle(back, clock[0])
    validate(ended, strict=True)
    assert ended.type == "adherence.exception_ended" and ended.data["verdict"] == "in"
    board.observe(ended)
    assert board.active() == []


def test_adherence_events_go_to_the_agents_supervisors_only() -> None:
    from cti.gateway.visibility import Scope, visible
    from cti.tokens import Principal, Role

    event = Envelope.new("adherence.exception", {"agent_id": "a1", "activity": "break", "state": "available",
                                                 "reason": None, "out_since": T0, "out_seconds": 301.0,
                                                 "tolerance_seconds": 300.0}, node="n", now=T0 + 301)
    validate(event, strict=True)
    team = Scope(agents=frozenset({"a1"}), queues=frozenset({"sales"}))
    other = Scope(agents=frozenset({"a2"}), queues=frozenset({"sales"}))
    assert visible(Principal(role=Role.SUPERVISOR, subject="s1", expires_at=1e12), team, event)
    assert not visible(Principal(role=Role.SUPERVISOR, subject="s2", expires_at=1e12), other, event)
    assert not visible(Principal(role=Role.AGENT, subject="a1", expires_at=1e12), team, event)
    assert visible(Principal(role=Role.OPERATOR, subject="op", expires_at=1e12), Scope(agents=None, queues=None),
                   event)


def test_unscheduled_agents_are_not_judged_nor_listed() -> None:
    tracker = AdherenceTracker()
    tracker.set_plan("1001", plan(), [], T0)
    assert tracker.state_changed("2002", "paused", "personal", T0 + M) == []
    assert tracker.handle_timer(T0 + 60 * M) == []
    assert [a["agent_id"] for a in tracker.snapshot(T0 + 60 * M)] == ["1001"]


def _drive(tracker: AdherenceTracker, agent: str, changes: list[tuple[float, str, str | None]],
           until: float) -> list[ExceptionRaised | ExceptionEnded]:
    """Feed state changes in time order, firing every timer exactly when it falls due (as the service does)."""
    events: list[ExceptionRaised | ExceptionEnded] = []
    pending = sorted(changes)
    now = pending[0][0] if pending else until
    while True:
        timer = tracker.get_timer(now)
        next_change = pending[0][0] if pending else None
        if timer is not None and timer <= until and (next_change is None or timer < next_change):
            now = timer
            events += tracker.handle_timer(now)
        elif next_change is not None:
            at, state, reason = pending.pop(0)
            now = at
            events += tracker.state_changed(agent, state, reason, now)
        else:
            return events


@settings(max_examples=120, deadline=None)
@given(st.lists(st.tuples(st.integers(-30, 200), st.sampled_from(["available", "on_call", "paused", "logged_out"]),
                          st.sampled_from([None, "break", "personal"])), min_size=1, max_size=12),
       st.lists(st.integers(1, 179), max_size=4), st.integers(1, 10))
def test_live_alerts_match_the_calculator(changes: list[tuple[int, str, str | None]], cuts: list[int],
                                          tol_min: int) -> None:
    """Every out-of-adherence run the report counts as longer than the tolerance (min_duration, no exceptions)
    raised exactly one live alert, and no other run did."""
    from cti.adherence import StateSpan, compute_shift

    points = sorted({0, 180, *cuts})
    acts = [Activity.PHONE, Activity.BREAK, Activity.MEETING]
    entries = [ScheduleEntry(agent_id="9", start=T0, end=T0 + 180 * M, activity=Activity.SHIFT)]
    entries += [ScheduleEntry(agent_id="9", start=T0 + a * M, end=T0 + b * M, activity=acts[i % 3])
                for i, (a, b) in enumerate(zip(points, points[1:], strict=False))]
    by_time = {T0 + m * M: (state, reason) for m, state, reason in changes}  # one change per minute
    timeline = sorted(by_time.items())
    settings_ = AdherenceSettings(tolerance_s=tol_min * M, tolerance_mode=ToleranceMode.MIN_DURATION)
    tracker = AdherenceTracker(settings_)
    tracker.set_plan("9", entries, [], T0 - 60 * M)
    events = _drive(tracker, "9", [(at, s, r) for at, (s, r) in timeline], T0 + 240 * M)
    spans = [StateSpan(start=at, end=(timeline[i + 1][0] if i + 1 < len(timeline) else T0 + 240 * M), state=s,
                       reason=r) for i, (at, (s, r)) in enumerate(timeline)]
    result = compute_shift(entries[0], entries, spans, (), settings_)
    expected = sorted(seg.start for seg in result.segments if seg.duration_s > tol_min * M)
    raised = sorted(e.out_since for e in events if isinstance(e, ExceptionRaised))
    assert raised == expected


def _timer_by_scan(tracker: AdherenceTracker, now: float) -> float | None:
    """The tracker's timer stated directly: every agent's next plan or exception boundary after ``now`` and every
    pending alert (out, not yet raised: out_since + tolerance + 1 s), the earliest of them."""
    times = [p for live in tracker.agents.values() for span in (*live.entries, *live.exceptions)
             for p in (span.start, span.end) if p > now]
    times += [live.out_since + tracker.settings.tolerance_s + 1 for live in tracker.agents.values()
              if live.out_since is not None and not live.raised]
    return min(times, default=None)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 240), st.sampled_from(["1", "2", "3"]),
                          st.sampled_from(["state", "plan", "timer"]),
                          st.sampled_from(["available", "on_call", "paused"]), st.integers(0, 200)),
                min_size=1, max_size=25))
def test_timer_is_the_earliest_boundary_or_alert_of_any_agent(steps: list[tuple[int, str, str, str, int]]) -> None:
    """get_timer keeps its answers without walking every agent (it runs before each bus event): it must equal the
    scan over every agent's plan and pending alert at every step, through state changes, plan reloads and timers."""
    tracker = AdherenceTracker(AdherenceSettings(tolerance_s=5 * M))
    for minute, agent, kind, state, x in sorted(steps, key=lambda s: s[0]):
        now = T0 + minute * M
        if kind == "state":
            tracker.state_changed(agent, state, "personal" if state == "paused" else None, now)
        elif kind == "plan":
            start = T0 + x * M
            entries = [ScheduleEntry(agent_id=agent, start=start, end=start + 120 * M, activity=Activity.SHIFT),
                       ScheduleEntry(agent_id=agent, start=start + 30 * M, end=start + 45 * M,
                                     activity=Activity.BREAK)]
            excused = [ApprovedException(agent_id=agent, start=start + 60 * M, end=start + 70 * M, reason="r",
                                         approved_by="s", approved_at=now)] if x % 2 else []
            tracker.set_plan(agent, entries, excused, now)
        else:
            tracker.handle_timer(now)
        for probe in (now, now + 0.5, now + 31 * M):
            assert tracker.get_timer(probe) == _timer_by_scan(tracker, probe)
