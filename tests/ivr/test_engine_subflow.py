"""Core tests of sub-flow call and return."""

from __future__ import annotations

from ivr.engine import Session
from ivr.events import DigitReceived, EnqueueCall, Hangup, HangupReason, PlayPrompt, PromptFinished
from tests.ivr.helpers import FakeCall, flows, names


def call(text: str, flow: str = "main") -> FakeCall:
    return FakeCall(Session(flows(text), flow, caller="5551234", called="100"))


def feed(c: FakeCall, digits: str) -> list[object]:
    out: list[object] = []
    for digit in digits:
        out.extend(c.send(DigitReceived(digit=digit), after=0.5))
    return out


SUB = """
flows:
  main:
    start: call_id
    nodes:
      call_id: {type: subflow, flow: identify, next: route}
      route:
        type: branch
        cases: [{when: {var: account, op: exists}, goto: agent}]
        default: bye
      agent: {type: queue, queue: support}
      bye: {type: hangup, prompts: [bye]}
  identify:
    start: ask
    nodes:
      ask:
        type: collect
        prompts: [enter]
        variable: account
        max_length: 3
        retries: 0
        next: back
        on_failure: back
      back: {type: return}
"""


def test_subflow_call_and_return() -> None:
    c = call(SUB)
    c.start()
    c.send(PromptFinished())
    out = feed(c, "123")
    assert isinstance(out[-1], EnqueueCall)
    assert [node for _flow, node in c.session.record.path] == ["call_id", "ask", "back", "route", "agent"]


def test_subflow_failure_path_and_hangup_prompt() -> None:
    c = call(SUB)
    c.start()
    c.send(PromptFinished())
    assert c.expire() == [PlayPrompt(prompts=names("bye",), barge_in=False)]
    assert c.send(PromptFinished()) == [Hangup(reason=HangupReason.FLOW_ENDED)]


def test_return_in_the_top_flow_hangs_up() -> None:
    c = call(SUB, flow="identify")
    c.start()
    c.send(PromptFinished())
    assert feed(c, "999") == [Hangup(reason=HangupReason.FLOW_ENDED)]
