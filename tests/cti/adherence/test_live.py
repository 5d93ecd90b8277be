"""Live adherence: the tracker core on a clock stepped by hand, the bus service on a real store, the gateway board."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from acd import AgentId, AgentState
from cti.adherence import Activity, AdherenceSettings, ApprovedException, ScheduleEntry, ToleranceMode
from cti.adherence.board import AdherenceBoard
from cti.adherence.importers import parse_schedule_file
from cti.adherence.service import AdherenceService
from cti.adherence.tracker import AdherenceTracker, ExceptionEnded, ExceptionRaised
from cti.bus import Bus
from cti.events import Envelope, validate
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
