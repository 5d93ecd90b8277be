"""cti.floor.alerts.board: active alerts followed from public events, acknowledgements, the size bound."""

from __future__ import annotations

from typing import Any

import pytest

from cti.events.registry import Envelope
from cti.floor.alerts.board import AlertBoard


def ev(type_: str, ts: float = 10.0, **data: Any) -> Envelope:
    return Envelope(type=type_, id=f"id-{type_}-{ts}", ts=ts, node="n", data=data)


def raised(alert_id: str, ts: float = 10.0, severity: str = "warning") -> Envelope:
    return ev("alert.raised", ts, alert_id=alert_id, kind="vip_wait", severity=severity, message="m",
              queue="sales", call_id="c1", agent_id=None)


def test_raise_acknowledge_clear() -> None:
    board = AlertBoard()
    board.observe(raised("a"))
    board.observe(raised("b", 11.0))
    assert [a.data()["alert_id"] for a in board.unacknowledged()] == ["a", "b"]
    assert board.unacknowledged()[0].data() == {"alert_id": "a", "kind": "vip_wait", "severity": "warning",
                                                "message": "m", "queue": "sales", "call_id": "c1",
                                                "agent_id": None, "raised_at": 10.0}
    result = board.acknowledge("a", "s1", 12.0)
    assert result is not None and result[1] is True
    assert result[0].ack_data() == {"alert_id": "a", "by": "s1", "at": 12.0, "queue": "sales"}
    second = board.acknowledge("a", "s2", 13.0)
    assert second is not None and second[1] is False and second[0].acknowledged_by == "s1"
    assert [a.data()["alert_id"] for a in board.unacknowledged()] == ["b"]
    board.observe(ev("alert.cleared", alert_id="a", kind="vip_wait", reason="answered"))
    assert board.get("a") is None and board.acknowledge("a", "s1", 14.0) is None and len(board) == 1


def test_acknowledged_event_from_elsewhere_and_escalation() -> None:
    board = AlertBoard()
    board.observe(raised("a"))
    board.observe(ev("alert.acknowledged", alert_id="a", by="s2", at=11.0, queue="sales"))
    board.observe(ev("alert.acknowledged", alert_id="a", by="s3", at=12.0, queue="sales"))  # the first wins
    alert = board.get("a")
    assert alert is not None and (alert.acknowledged_by, alert.acknowledged_at) == ("s2", 11.0)
    board.observe(raised("a", 20.0, severity="critical"))  # escalated: needs a new acknowledgement
    assert [(a.raised["severity"], a.raised_at) for a in board.unacknowledged()] == [("critical", 20.0)]


def test_malformed_and_other_events_are_ignored_and_the_board_is_bounded() -> None:
    board = AlertBoard(limit=2)
    board.observe(ev("alert.raised", alert_id=7))
    board.observe(ev("queue.stats", alert_id="x"))
    assert len(board) == 0
    for n in range(3):
        board.observe(raised(f"a{n}", float(n)))
    assert [a.raised["alert_id"] for a in board.unacknowledged()] == ["a1", "a2"]
    with pytest.raises(ValueError):
        AlertBoard(limit=0)
