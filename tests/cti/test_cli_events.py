"""``cti events``' pure part: type filters, the line it prints, the seq it resumes from."""

from __future__ import annotations

import json

import click
import pytest

from cti.cli.events import EventTail, TypeFilter


def frame(type_: str, seq: int, **data: object) -> str:
    return json.dumps({"type": type_, "id": f"id{seq}", "ts": 0.25, "node": "n1", "data": data, "seq": seq})


def test_type_filter_patterns() -> None:
    only = TypeFilter.parse(["call.offered", "agent.*"])
    assert only.matches("call.offered") and only.matches("agent.state_changed")
    assert not only.matches("call.ended") and not only.matches("agents.x")
    assert TypeFilter.parse([]).matches("anything.else") and TypeFilter.parse(["*"]).matches("a.b")
    for bad in ("call*", "*.offered", "", "a.*.*"):
        with pytest.raises(click.BadParameter):
            TypeFilter.parse([bad])


def test_prints_matching_events_and_follows_seq_of_all() -> None:
    tail = EventTail(TypeFilter.parse(["call.*"]))
    assert tail.receive(json.dumps({"type": "hello", "data": {"seq": 10, "resumed": False, "node": "n1"}})) == ([], [])
    assert tail.since == 10
    assert tail.receive(frame("queue.stats", 11, queue="q")) == ([], [])
    assert tail.since == 11  # not shown, still seen: a resume starts after it
    lines, notes = tail.receive(frame("call.ended", 12, call_id="c1", reason="caller-hangup", agent_id=None))
    assert notes == [] and tail.since == 12 and tail.printed == 1
    assert lines[0].endswith("call.ended call_id=c1 reason=caller-hangup agent_id=null")
    assert tail.url("http://127.0.0.1:8080", "t k") == "ws://127.0.0.1:8080/ws?token=t+k&since=12"


def test_json_mode_prints_the_envelope_and_a_failed_resume_is_reported() -> None:
    tail = EventTail(TypeFilter.parse([]), as_json=True, since=5)
    assert tail.url("https://node.example:8443/", "t") == "wss://node.example:8443/ws?token=t&since=5"
    _, notes = tail.receive(json.dumps({"type": "hello", "data": {"seq": 900, "resumed": False}}))
    assert "events were lost" in notes[0] and tail.since == 900
    assert tail.receive(json.dumps({"type": "resync", "data": {"since": 5}})) == ([], [])
    lines, _ = tail.receive(frame("call.reason", 901, call_id="c", reason="r", source="ivr"))
    assert json.loads(lines[0])["seq"] == 901 and json.loads(lines[0])["data"]["source"] == "ivr"
    resumed = EventTail(TypeFilter.parse([]), since=7)
    assert resumed.receive(json.dumps({"type": "hello", "data": {"seq": 20, "resumed": True}})) == ([], [])
    assert resumed.since == 7  # the replayed events follow and move it on
