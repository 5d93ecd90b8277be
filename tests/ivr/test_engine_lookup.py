"""Core tests of the CRM look-up node and of the demo flow `main`."""

from __future__ import annotations

from pathlib import Path

from ivr.engine import LOOKUP_GRACE, Session, SessionState
from ivr.events import (
    DigitReceived,
    EnqueueCall,
    LookupCompleted,
    LookupFailed,
    LookupId,
    PlayPrompt,
    PromptFinished,
    RaiseAlert,
    StartLookup,
    TagCall,
)
from ivr.loader import load_flow_dir
from ivr.record import Outcome
from tests.ivr.helpers import FakeCall, flows, names

REPO = Path(__file__).resolve().parents[2]

CRM = """
flows:
  main:
    start: crm
    nodes:
      crm:
        type: lookup
        url: "http://crm.example/customers/{caller}"
        params: {dialled: "{called}"}
        timeout: 2
        result:
          customer_name: customer.name
          tier: {path: customer.tier}
          open_tickets: {path: tickets.open, type: int}
        next: route
        on_error: fallback
      route:
        type: branch
        cases:
          - when: {var: open_tickets, op: gt, value: 0}
            goto: support
          - when: {var: tier, op: eq, value: gold}
            goto: gold
        default: sales
      support: {type: queue, queue: support}
      gold: {type: queue, queue: support, priority: 5}
      sales: {type: queue, queue: sales}
      fallback: {type: queue, queue: support, priority: 1}
"""


def start(caller: str = "+1 555/0100") -> tuple[FakeCall, StartLookup]:
    c = FakeCall(Session(flows(CRM), "main", caller=caller, called="100"))
    out = c.start()
    assert len(out) == 1 and isinstance(out[0], StartLookup)
    return c, out[0]


def test_lookup_request_is_templated_and_url_safe() -> None:
    c, req = start()
    assert req.url == "http://crm.example/customers/%2B1%20555%2F0100"
    assert req.params == {"dialled": "100"} and req.timeout == 2.0
    assert c.session.state is SessionState.LOOKING_UP


def test_lookup_result_is_mapped_typed_and_kept() -> None:
    c, req = start()
    result = {"customer": {"name": "Ada", "tier": "gold"}, "tickets": {"open": "2"}}
    out = c.send(LookupCompleted(lookup_id=req.lookup_id, result=result), after=0.3)
    assert isinstance(out[0], EnqueueCall) and out[0].queue == "support" and out[0].priority == 0
    assert out[0].variables["customer_name"] == "Ada" and out[0].variables["open_tickets"] == 2
    record = c.session.record
    assert record.lookups[0].ok and record.lookups[0].result == result
    assert record.variables["tier"] == "gold"


def test_missing_result_fields_stay_unset() -> None:
    c, req = start()
    out = c.send(LookupCompleted(lookup_id=req.lookup_id, result={"customer": {"tier": "gold"}}))
    assert isinstance(out[0], EnqueueCall) and out[0].priority == 5
    assert "open_tickets" not in c.session.record.variables


def test_wrongly_typed_result_takes_the_error_branch() -> None:
    c, req = start()
    out = c.send(LookupCompleted(lookup_id=req.lookup_id, result={"tickets": {"open": "many"}}))
    assert isinstance(out[0], EnqueueCall) and out[0].priority == 1
    lookup = c.session.record.lookups[0]
    assert not lookup.ok and lookup.reason == "result field 'tickets.open' is not a int"


def test_failed_lookup_takes_the_error_branch() -> None:
    c, req = start()
    out = c.send(LookupFailed(lookup_id=req.lookup_id, reason="http status 500"))
    assert isinstance(out[0], EnqueueCall) and out[0].priority == 1
    assert c.session.record.lookups[0].reason == "http status 500"


def test_lookup_timeout_in_the_core_is_a_back_stop() -> None:
    c, _req = start()
    assert c.session.get_timer() == 2.0 + LOOKUP_GRACE
    out = c.expire()
    assert isinstance(out[0], EnqueueCall) and out[0].priority == 1
    assert c.session.record.lookups[0].reason == "timeout"


def test_stale_lookup_answers_are_ignored() -> None:
    c, req = start()
    assert c.send(LookupCompleted(lookup_id=LookupId(req.lookup_id + 7), result={})) == []
    assert c.session.state is SessionState.LOOKING_UP


# -- the demo flow ------------------------------------------------------------------------


def demo(caller: str) -> FakeCall:
    flow_set = load_flow_dir(REPO / "config" / "flows", REPO / "config" / "prompts")
    return FakeCall(Session(flow_set, "main", caller=caller, called="100"))


def through_greeting(c: FakeCall) -> None:
    c.start()
    assert c.send(PromptFinished(), after=2.4) == [PlayPrompt(prompts=names("main_menu",), barge_in=True)]


def test_demo_1_goes_to_sales_2_to_support() -> None:
    for digit, queue in (("1", "sales"), ("2", "support")):
        c = demo("5559999")
        through_greeting(c)
        out = c.send(DigitReceived(digit=digit), after=1.0)
        assert isinstance(out[-1], EnqueueCall) and (out[-1].queue, out[-1].priority) == (queue, 0)


def test_demo_repeats_twice_then_support() -> None:
    c = demo("5559999")
    through_greeting(c)
    c.send(PromptFinished(), after=3.7)
    assert c.send(DigitReceived(digit="5")) == [PlayPrompt(prompts=names("invalid", "main_menu"), barge_in=True)]
    c.send(PromptFinished(), after=6.0)
    assert c.expire() == [PlayPrompt(prompts=names("no_input", "main_menu"), barge_in=True)]
    c.send(PromptFinished(), after=6.0)
    out = c.expire()
    assert isinstance(out[0], EnqueueCall) and out[0].queue == "support"
    assert c.session.outcome is Outcome.QUEUED


def test_demo_vip_gets_priority_10_and_an_alert() -> None:
    c = demo("+15550100")
    out = c.start()
    assert out[0] == TagCall(vip=True, priority=10, reason="vip", skills={})
    assert out[1] == RaiseAlert(kind="vip", message="VIP caller +15550100 is in the IVR", caller="+15550100")
    c.send(PromptFinished())
    out = c.send(DigitReceived(digit="1"))
    assert isinstance(out[-1], EnqueueCall) and out[-1].priority == 10 and out[-1].vip


def test_demo_prompts_are_8khz_mono_and_short() -> None:
    flow_set = load_flow_dir(REPO / "config" / "flows", REPO / "config" / "prompts")
    assert set(flow_set.prompt_seconds) == {"welcome", "main_menu", "invalid", "no_input", "all_busy", "goodbye"}
    assert all(0.5 < s < 8 for s in flow_set.prompt_seconds.values())


def test_demo_type_ahead_a_key_pressed_during_the_greeting_is_heard_by_the_menu() -> None:
    c = demo("5559999")
    c.start()
    assert c.send(DigitReceived(digit="1"), after=1.0) == []  # the greeting is not interrupted...
    out = c.send(PromptFinished(), after=1.4)
    assert out[0] == PlayPrompt(prompts=names("main_menu",), barge_in=True)
    assert isinstance(out[-1], EnqueueCall) and out[-1].queue == "sales"  # ...but the menu hears the key
    assert [i.digits for i in c.session.record.inputs] == ["1"]


def test_type_ahead_is_bounded() -> None:
    from ivr.engine import TYPEAHEAD_MAX

    c = demo("5559999")
    c.start()
    for _ in range(TYPEAHEAD_MAX + 10):
        c.send(DigitReceived(digit="7"))  # not an option: each one is an invalid answer at the menu
    c.send(PromptFinished(), after=2.4)
    invalid = [i for i in c.session.record.inputs if i.digits == "7"]
    assert 0 < len(invalid) <= TYPEAHEAD_MAX
    assert c.session.outcome is Outcome.QUEUED  # the retries ran out: on to support, no loop
