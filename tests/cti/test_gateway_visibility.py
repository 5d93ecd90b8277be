"""cti.gateway.visibility: every role against every event type, and narrowing with subscribe."""

from __future__ import annotations

from typing import Any

import pytest

from cti.events.registry import REGISTRY, Envelope
from cti.gateway import Scope, visible
from cti.tokens import Principal, Role

AGENT = Principal(role=Role.AGENT, subject="a1", expires_at=1e12)
SUPERVISOR = Principal(role=Role.SUPERVISOR, subject="s1", expires_at=1e12)
OPERATOR = Principal(role=Role.OPERATOR, subject="operator", expires_at=1e12)
# a1 is in team t1 and serves "sales"; s1 supervises team t1 and queue "sales"; a2 (team t2) serves "support".
SCOPES = {
    Role.AGENT: Scope(agents=frozenset({"a1"}), queues=frozenset({"sales"})),
    Role.SUPERVISOR: Scope(agents=frozenset({"a1"}), queues=frozenset({"sales"})),
    Role.OPERATOR: Scope(agents=None, queues=None),
}
PRINCIPALS = {Role.AGENT: AGENT, Role.SUPERVISOR: SUPERVISOR, Role.OPERATOR: OPERATOR}


def ev(type_: str, **data: Any) -> Envelope:
    return Envelope(type=type_, id=f"id-{type_}", ts=1.0, node="n", data=data)


# (event, seen by agent a1, seen by supervisor s1, seen by operator)
CASES: list[tuple[str, Envelope, bool, bool, bool]] = [
    ("notice read receipt", ev("notice.read", notice_id="n1", agent_id="a2", sender="s9", audience=["sales"]),
     False, True, True),
    ("call reason", ev("call.reason", call_id="c1", reason="billing", source="ivr"), False, False, True),
    ("own state", ev("agent.state_changed", agent_id="a1", state="paused"), True, True, True),
    ("other state", ev("agent.state_changed", agent_id="a2", state="paused"), False, False, True),
    ("own login", ev("agent.logged_in", agent_id="a1", queues=["sales"]), True, True, True),
    ("other logout", ev("agent.logged_out", agent_id="a2", reason="user"), False, False, True),
    ("arrived", ev("call.arrived", call_id="c1", caller_number="1"), False, False, True),
    ("ivr input", ev("call.ivr_input", call_id="c1", digits="1"), False, False, True),
    ("call failed", ev("call.failed", call_id="c1", phase="queued", where="acd", error="x"), False, False, True),
    ("queued in scope", ev("call.queued", call_id="c1", queue="sales"), False, True, True),
    ("queued elsewhere", ev("call.queued", call_id="c1", queue="support"), False, False, True),
    ("own screen pop", ev("call.offered", call_id="c1", agent_id="a1", queue="sales"), True, True, True),
    ("other screen pop", ev("call.offered", call_id="c2", agent_id="a2", queue="support"), False, False, True),
    ("other agent, my queue", ev("call.offered", call_id="c3", agent_id="a2", queue="sales"), False, True, True),
    ("my agent, other queue", ev("call.answered", call_id="c4", agent_id="a1", queue="support"), True, True, True),
    ("ended, own, no queue", ev("call.ended", call_id="c1", agent_id="a1", queue=None), True, True, True),
    ("ended elsewhere", ev("call.ended", call_id="c2", agent_id="a2", queue="support"), False, False, True),
    ("ended unanswered", ev("call.ended", call_id="c2", agent_id=None, queue=None), False, False, True),
    ("abandoned in scope", ev("call.abandoned", call_id="c5", queue="sales"), False, True, True),
    ("flowed out in scope", ev("call.flowed_out", call_id="c6", queue="sales", reason="max_wait",
                               flow="sales_message"), False, True, True),
    ("flowed out elsewhere", ev("call.flowed_out", call_id="c7", queue="support", reason="queue_full", flow=None),
     False, False, True),
    ("own transfer", ev("call.transferred", call_id="c1", agent_id="a1", queue="support", to_agent="a2",
                        method="refer"), True, True, True),
    ("transfer elsewhere", ev("call.transferred", call_id="c2", agent_id="a2", queue="support", to_agent=None,
                              method="desktop"), False, False, True),
    ("transfer into scope", ev("call.transferred", call_id="c3", agent_id="a2", queue="sales", to_agent="a1",
                               method="desktop"), False, True, True),
    ("stats in scope", ev("queue.stats", queue="sales", waiting=1), False, True, True),
    ("stats elsewhere", ev("queue.stats", queue="support", waiting=1), False, False, True),
    ("alert in scope", ev("alert.raised", alert_id="x", queue="sales"), False, True, True),
    ("alert elsewhere", ev("alert.raised", alert_id="x", queue="support"), False, False, True),
    ("alert without queue", ev("alert.raised", alert_id="x", queue=None), False, True, True),
    ("alert cleared", ev("alert.cleared", alert_id="x", kind="vip_call"), False, True, True),
    ("ack in scope", ev("alert.acknowledged", alert_id="x", by="s2", at=1.0, queue="sales"), False, True, True),
    ("ack elsewhere", ev("alert.acknowledged", alert_id="x", by="s2", at=1.0, queue="support"), False, False, True),
    ("ack without queue", ev("alert.acknowledged", alert_id="x", by="s2", at=1.0, queue=None), False, True, True),
    ("notice to all", ev("notice.broadcast", sender="s9", audience=["*"]), True, True, True),
    ("notice to my queue", ev("notice.broadcast", sender="s9", audience=["sales", "vip"]), True, True, True),
    ("notice elsewhere", ev("notice.broadcast", sender="s9", audience=["support"]), False, False, True),
    ("own notice elsewhere", ev("notice.broadcast", sender="s1", audience=["support"]), False, True, True),
    ("notice, bad audience", ev("notice.broadcast", sender="s9", audience="*"), False, False, True),
    ("supervision of my agent", ev("supervision.started", agent_id="a1", call_id="c1"), False, True, True),
    ("supervision elsewhere", ev("supervision.ended", agent_id="a2", call_id="c2"), False, False, True),
    ("supervision mode", ev("supervision.changed", agent_id="a1", call_id="c1"), False, True, True),
    ("qa rule published", ev("qa.rule.published", rule_id="r", version=1), True, True, True),
    ("qa sample selected", ev("qa.sample.selected", rule_id="r", version=1), True, True, True),
    ("qa library addition", ev("qa.library.published", entry_id=1), True, True, True),
    ("own evaluation", ev("qa.evaluation.published", agent_id="a1", queue="sales"), True, True, True),
    ("other evaluation", ev("qa.evaluation.published", agent_id="a2", queue="support"), False, False, True),
    ("evaluation, my queue", ev("qa.evaluation.published", agent_id="a2", queue="sales"), False, True, True),
    ("own evaluation final", ev("qa.evaluation.finalised", agent_id="a1", queue="sales"), True, True, True),
    ("other evaluation final", ev("qa.evaluation.finalised", agent_id="a2", queue="support"), False, False, True),
    ("own appeal filed", ev("qa.appeal.filed", agent_id="a1", queue="support"), True, True, True),
    ("other appeal decided", ev("qa.appeal.decided", agent_id="a2", queue="support"), False, False, True),
    ("own appeal decided", ev("qa.appeal.decided", agent_id="a1", queue=None), True, True, True),
    ("own appeal admitted", ev("qa.appeal.admitted", agent_id="a1", queue="sales"), True, True, True),
    ("other appeal refused", ev("qa.appeal.refused", agent_id="a2", queue="support"), False, False, True),
    ("own appeal withdrawn", ev("qa.appeal.withdrawn", agent_id="a1", queue="sales"), True, True, True),
    ("appeal opinion, my queue", ev("qa.appeal.opinion", agent_id="a2", queue="sales"), False, True, True),
    ("adherence of my agent", ev("adherence.exception", agent_id="a1", activity="break"), False, True, True),
    ("adherence elsewhere", ev("adherence.exception", agent_id="a2", activity="break"), False, False, True),
    ("adherence back", ev("adherence.exception_ended", agent_id="a1", verdict="in"), False, True, True),
    ("voicemail, my queue", ev("voicemail.left", voicemail_id="vm-1", call_id="c1", queue="sales"),
     False, True, True),
    ("voicemail elsewhere", ev("voicemail.left", voicemail_id="vm-2", call_id="c2", queue="support"),
     False, False, True),
    ("voicemail, no queue", ev("voicemail.left", voicemail_id="vm-3", call_id="c3", queue=None), False, False, True),
    ("own phone", ev("phone.state_changed", agent_id="a1", phone_id="p-1", state="ringing"), True, True, True),
    ("other phone", ev("phone.state_changed", agent_id="a2", phone_id="p-2", state="ready"), False, False, True),
    ("unknown type", ev("node.started", agent_id="a1", queue="sales"), False, False, True),
]


@pytest.mark.parametrize(("label", "envelope", "agent", "supervisor", "operator"), CASES,
                         ids=[c[0] for c in CASES])
def test_visibility_table(label: str, envelope: Envelope, agent: bool, supervisor: bool, operator: bool) -> None:
    expected = {Role.AGENT: agent, Role.SUPERVISOR: supervisor, Role.OPERATOR: operator}
    for role, principal in PRINCIPALS.items():
        assert visible(principal, SCOPES[role], envelope) is expected[role], (label, role)


def test_table_covers_every_registered_type() -> None:
    assert {schema.type for schema in REGISTRY.values()} <= {case[1].type for case in CASES}


def test_agent_token_never_sees_another_agent_even_with_a_wide_scope() -> None:
    wide = Scope(agents=None, queues=None)
    assert not visible(AGENT, wide, ev("call.offered", call_id="c2", agent_id="a2", queue="sales"))
    assert not visible(AGENT, wide, ev("queue.stats", queue="sales"))
    assert not visible(AGENT, wide, ev("alert.raised", alert_id="x", queue=None))


def test_narrowed_operator_follows_only_what_it_asked_for() -> None:
    scope = SCOPES[Role.OPERATOR].narrowed(agents=frozenset({"a2"}), queues=None)
    assert scope == Scope(agents=frozenset({"a2"}), queues=None)
    assert visible(OPERATOR, scope, ev("agent.state_changed", agent_id="a2"))
    assert not visible(OPERATOR, scope, ev("agent.state_changed", agent_id="a1"))
    assert visible(OPERATOR, scope, ev("queue.stats", queue="anything"))
    assert visible(OPERATOR, scope, ev("node.started"))


def test_narrowed_supervisor() -> None:
    sup = Scope(agents=frozenset({"a1", "a3"}), queues=frozenset({"sales", "vip"}))
    scope = sup.narrowed(agents=frozenset({"a3"}), queues=frozenset({"vip"}))
    assert scope == Scope(agents=frozenset({"a3"}), queues=frozenset({"vip"}))
    assert not visible(SUPERVISOR, scope, ev("agent.state_changed", agent_id="a1"))
    assert visible(SUPERVISOR, scope, ev("agent.state_changed", agent_id="a3"))
    assert not visible(SUPERVISOR, scope, ev("queue.stats", queue="sales"))
    assert visible(SUPERVISOR, scope, ev("call.queued", queue="vip"))
    # narrowing never widens: asking for an agent outside the scope yields nothing
    assert sup.narrowed(agents=frozenset({"zz"}), queues=None).agents == frozenset()
