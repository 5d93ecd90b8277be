"""Property: any flow the validator accepts ends (queue, transfer, hang-up, ...) within a bounded number of
steps, whatever the caller presses or fails to press, whatever the CRM does.

Flows are generated at random as YAML, loaded through the real loader (which must accept them), then driven
with random events that fit the session's state; time jumps to the timer whenever the caller stays silent.
"""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivr.engine import Session, SessionState
from ivr.events import (
    DigitReceived,
    IvrEvent,
    LookupCompleted,
    LookupFailed,
    PromptFinished,
    StartLookup,
    VoicemailRecorded,
)
from ivr.loader import load_flow_text
from ivr.record import Outcome

AUTOMATIC = ("play", "set", "branch", "lookup", "tag", "subflow", "voicemail")
INPUT = ("menu", "collect")
TERMINAL = ("queue", "hangup", "voicemail")
KEYS = "0123456789*#"
SUB_FLOW = {
    "start": "ask",
    "nodes": {
        "ask": {"type": "collect", "prompts": ["p"], "variable": "pin", "max_length": 2, "retries": 1,
                "next": "back", "on_failure": "back"},
        "back": {"type": "return"},
    },
}
DEFS_FLOW = {  # declares the variables the random conditions use (types are checked flow-set wide)
    "start": "s",
    "nodes": {"s": {"type": "set", "values": {"score": 0, "choice": "x"}, "next": "e"}, "e": {"type": "hangup"}},
}
CONDITIONS = (
    {"var": "caller", "op": "eq", "value": "1"},
    {"in_list": "vip"},
    {"business_hours": "office"},
    {"var": "score", "op": "gt", "value": 3},
    {"var": "choice", "op": "exists"},
    {"not": {"var": "pin", "op": "matches", "value": "1.*"}},
)


@st.composite
def flow_documents(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(min_value=2, max_value=8))
    names = [f"n{i}" for i in range(count)]
    nodes: dict[str, Any] = {}
    for i in range(count - 1):
        forward = st.sampled_from(names[i + 1:])
        anywhere = st.sampled_from(names)
        kind = draw(st.sampled_from(AUTOMATIC + INPUT))
        following = names[i + 1]  # keeps every node reachable
        node: dict[str, Any] = {"type": kind}
        if kind == "play":
            node.update(prompts=["p"], next=following)
        elif kind == "set":
            node.update(values={"note": "from {caller}"}, next=following)
        elif kind == "tag":
            node.update(vip=True, priority=draw(st.integers(0, 10)), alert="vip {caller}", next=following)
        elif kind == "subflow":
            node.update(flow="sub", next=following)
        elif kind == "voicemail":
            node.update(mailbox="main", prompts=["p"], max_seconds=5, next=following)
        elif kind == "branch":
            cases = draw(st.lists(st.tuples(st.sampled_from(CONDITIONS), forward), min_size=1, max_size=3))
            node.update(cases=[{"when": c, "goto": g} for c, g in cases], default=following)
        elif kind == "lookup":
            node.update(url="http://crm/{caller}", timeout=1, result={"score": {"path": "score", "type": "int"}},
                        next=draw(forward), on_error=following)
        else:
            common = {"prompts": ["p"], "retries": draw(st.integers(0, 2)), "max_visits": draw(st.integers(1, 3)),
                      "on_failure": following, "timeout": 2}
            node.update(common)
            if kind == "menu":
                keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=4, unique=True))
                node.update(options={k: draw(anywhere) for k in keys}, store="choice")
            else:
                node.update(variable="digits", min_length=1, max_length=draw(st.integers(1, 4)), next=draw(anywhere))
        nodes[names[i]] = node
    last = draw(st.sampled_from(TERMINAL))
    nodes[names[-1]] = {
        "queue": {"type": "queue", "queue": "support"},
        "hangup": {"type": "hangup", "prompts": ["p"]},
        "voicemail": {"type": "voicemail", "mailbox": "main"},
    }[last]
    return {
        "lists": {"vip": ["1", "2"]},
        "calendars": {"office": {"timezone": "Europe/Paris", "hours": {"weekdays": ["09:00-17:00"]}}},
        "flows": {"main": {"start": "n0", "nodes": nodes}, "sub": SUB_FLOW, "defs": DEFS_FLOW},
    }


def step_bound(doc: dict[str, Any]) -> int:
    """The validator's promise as a number.

    Waits for input are bounded by visits x (retries + 1) per menu/collect (visits count per call, so the
    sub-flow's collect is counted once); each wait takes at most a prompt event plus ``max_length`` digits
    plus a timer; between two waits the automatic nodes form no cycle, so each node is entered at most once
    (twice counting the sub-flow's nodes, entered once per call), each needing at most one event.
    """
    all_nodes: list[dict[str, Any]] = [n for name in ("main", "sub") for n in doc["flows"][name]["nodes"].values()]
    per_attempt = 2 + max(int(n.get("max_length", 1)) for n in all_nodes)
    waits = sum(int(n.get("max_visits", 3)) * (int(n.get("retries", 2)) + 1) for n in all_nodes if n["type"] in INPUT)
    return (waits + 1) * (per_attempt + 2 * len(all_nodes) + 1)


def _keys(session: Session) -> str:
    """Keys a caller might press now: usually a valid menu option (a caller who follows loops), else any key."""
    flow, node_id = session.record.path[-1]
    node = session.flows.flows[flow].nodes[node_id]
    options = "".join(getattr(node, "options", {}))
    return options * 3 + KEYS if options else KEYS


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=flow_documents(), data=st.data(), caller=st.sampled_from(["1", "2", "5550100"]))
def test_every_valid_flow_ends_within_a_bounded_number_of_steps(
    doc: dict[str, Any], data: st.DataObject, caller: str
) -> None:
    flow_set = load_flow_text(yaml.safe_dump(doc), "random.yaml")  # the validator must accept these flows
    session = Session(flow_set, "main", caller=caller)
    now = 1_764_000_000.0  # November 2025, so business hours vary with the drawn offsets
    out = session.start(now)
    bound = step_bound(doc)
    steps = 0
    while not session.finished:
        steps += 1
        assert steps <= bound, f"no end after {bound} steps in state {session.state}"
        timer = session.get_timer()
        assert timer is not None, f"waiting in {session.state} with no timer: the caller could be stuck"
        choices: list[str] = ["timer"]
        if session.state in (SessionState.PLAYING, SessionState.PROMPTING):
            choices.append("prompt_finished")
        if session.state in (SessionState.PROMPTING, SessionState.WAITING_INPUT):
            choices.append("digit")
        if session.state is SessionState.LOOKING_UP:
            choices += ["lookup_ok", "lookup_bad_type", "lookup_failed"]
        if session.state is SessionState.RECORDING:
            choices += ["recorded", "digit"]
        choice = data.draw(st.sampled_from(choices))
        lookups = [c for c in out if isinstance(c, StartLookup)]
        event: IvrEvent | None = None
        if choice == "timer":
            now = max(now, timer)
            out = session.handle_timer(now)
            continue
        now += data.draw(st.floats(min_value=0.0, max_value=1.0))
        if choice == "prompt_finished":
            event = PromptFinished()
        elif choice == "digit":
            event = DigitReceived(digit=data.draw(st.sampled_from(_keys(session))))
        elif choice == "recorded":
            event = VoicemailRecorded(seconds=1.0)
        elif choice == "lookup_failed":
            event = LookupFailed(lookup_id=lookups[-1].lookup_id, reason="timeout")
        else:
            score: object = data.draw(st.integers(0, 9)) if choice == "lookup_ok" else "n/a"
            event = LookupCompleted(lookup_id=lookups[-1].lookup_id, result={"score": score})
        out = session.handle(event, now)
    assert session.outcome in {Outcome.QUEUED, Outcome.HUNG_UP, Outcome.VOICEMAIL}
    assert session.get_timer() is None


def _adversary(session: Session, out: list[Any]) -> IvrEvent | None:
    """A caller who always takes the way back: the option leading furthest back, digits that are accepted."""
    flow, node_id = session.record.path[-1]
    node = session.flows.flows[flow].nodes[node_id]
    options: dict[str, str] = dict(getattr(node, "options", {}))
    if session.state in (SessionState.PROMPTING, SessionState.WAITING_INPUT):
        if options:
            key = min(options, key=lambda k: (int(options[k][1:]) if options[k].startswith("n") else 0, k))
            return DigitReceived(digit=key)
        return DigitReceived(digit="1")
    if session.state is SessionState.PLAYING:
        return PromptFinished()
    if session.state is SessionState.LOOKING_UP:
        lookup = [c for c in out if isinstance(c, StartLookup)][-1]
        return LookupCompleted(lookup_id=lookup.lookup_id, result={"score": 5})
    if session.state is SessionState.RECORDING:
        return VoicemailRecorded(seconds=1.0)
    return None


@settings(max_examples=150, deadline=None)
@given(doc=flow_documents(), caller=st.sampled_from(["1", "5550100"]))
def test_a_caller_who_keeps_going_back_is_still_bounded(doc: dict[str, Any], caller: str) -> None:
    session = Session(load_flow_text(yaml.safe_dump(doc), "random.yaml"), "main", caller=caller)
    now = 1_764_000_000.0
    out: list[Any] = session.start(now)
    bound = step_bound(doc)
    for _ in range(bound):
        if session.finished:
            break
        now += 0.1
        event = _adversary(session, out)
        out = session.handle(event, now) if event is not None else session.handle_timer(now)
    assert session.finished, f"still in {session.state} after {bound} steps"
