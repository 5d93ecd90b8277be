"""Core tests of the interpreter, one node type at a time (no event loop, time stepped by hand)."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from ivr.engine import PROMPT_GUARD_MARGIN, RECORD_GRACE, Session, SessionState
from ivr.errors import LocalIvrError, UnknownFlowError
from ivr.events import (
    CallerHungUp,
    DigitReceived,
    EnqueueCall,
    Hangup,
    HangupReason,
    PlayPrompt,
    PromptFinished,
    RaiseAlert,
    RecordVoicemail,
    StopPrompt,
    StopVoicemail,
    TagCall,
    VoicemailRecorded,
)
from ivr.record import InputResult, Outcome
from tests.ivr.helpers import FakeCall, flows, names

MENU = """
flows:
  main:
    start: menu
    nodes:
      menu:
        type: menu
        prompts: [menu]
        options: {"1": sales, "2": support}
        timeout: 4
        retries: 2
        invalid_prompts: [invalid]
        no_input_prompts: [silence]
        on_failure: support
        store: choice
      sales: {type: queue, queue: sales}
      support: {type: queue, queue: support, priority: 3, skills: {support: 2}}
"""


def call(text: str, caller: str = "5551234", flow: str = "main") -> FakeCall:
    return FakeCall(Session(flows(text), flow, caller=caller, called="100"))


def test_play_waits_for_prompt_finished_then_moves_on() -> None:
    c = call("""
    flows:
      main:
        start: hi
        nodes:
          hi: {type: play, prompts: [hello, bye], next: done}
          done: {type: hangup}
    """)
    assert c.start() == [PlayPrompt(prompts=names("hello", "bye"), barge_in=False)]
    assert c.session.state is SessionState.PLAYING
    assert c.send(DigitReceived(digit="1")) == []  # no barge-in on a play node
    assert c.send(PromptFinished(), after=1.0) == [Hangup(reason=HangupReason.FLOW_ENDED)]
    assert c.session.outcome is Outcome.HUNG_UP
    assert c.session.finished and c.session.get_timer() is None


def test_lost_prompt_finished_is_covered_by_the_guard_timer() -> None:
    c = call("""
    flows:
      main:
        start: hi
        nodes:
          hi: {type: play, prompts: [hello], next: done}
          done: {type: hangup}
    """)
    c.start()
    # unknown prompt length (no prompt_dir given): 30 s default plus the margin
    assert c.session.get_timer() == 30.0 + PROMPT_GUARD_MARGIN
    assert c.session.handle_timer(10.0) == []  # early: nothing happens
    with capture_logs() as logs:
        assert c.expire() == [Hangup(reason=HangupReason.FLOW_ENDED)]
    assert any(e["event"] == "ivr.prompt.timed_out" for e in logs)


def test_menu_option_queues_and_keeps_the_choice() -> None:
    c = call(MENU)
    assert c.start() == [PlayPrompt(prompts=names("menu",), barge_in=True)]
    c.send(PromptFinished(), after=2.0)
    assert c.session.state is SessionState.WAITING_INPUT
    assert c.session.get_timer() == 6.0
    out = c.send(DigitReceived(digit="1"), after=1.0)
    assert out == [EnqueueCall(queue="sales", skills={}, priority=0, vip=False, reason=None,
                               variables={"caller": "5551234", "called": "100", "choice": "1"})]
    record = c.session.record
    assert record.variables["choice"] == "1"
    assert [(i.digits, i.result) for i in record.inputs] == [("1", InputResult.ACCEPTED)]


def test_menu_barge_in_stops_the_prompt() -> None:
    c = call(MENU)
    c.start()
    out = c.send(DigitReceived(digit="2"), after=0.5)
    assert out[0] == StopPrompt()
    assert isinstance(out[1], EnqueueCall) and out[1].queue == "support"
    assert out[1].priority == 3 and out[1].skills == {"support": 2}


def test_menu_invalid_and_no_input_retry_then_fail_over() -> None:
    c = call(MENU)
    c.start()
    c.send(PromptFinished(), after=2.0)
    assert c.send(DigitReceived(digit="7")) == [PlayPrompt(prompts=names("invalid", "menu"), barge_in=True)]
    c.send(PromptFinished(), after=2.0)
    assert c.expire() == [PlayPrompt(prompts=names("silence", "menu"), barge_in=True)]  # no input after 4 s
    c.send(PromptFinished(), after=2.0)
    out = c.expire()
    assert len(out) == 1 and isinstance(out[0], EnqueueCall) and out[0].queue == "support"
    results = [i.result for i in c.session.record.inputs]
    assert results == [InputResult.INVALID, InputResult.NO_INPUT, InputResult.NO_INPUT]
    # each answer is told as it happens (call.ivr_input), in the order of the record, right or wrong
    assert c.inputs == list(c.session.record.inputs)
    assert [(i.digits, i.result) for i in c.inputs] == [("7", InputResult.INVALID), ("", InputResult.NO_INPUT),
                                                        ("", InputResult.NO_INPUT)]


def test_menu_with_zero_retries_fails_over_at_once() -> None:
    c = call(MENU.replace("retries: 2", "retries: 0"))
    c.start()
    c.send(PromptFinished())
    out = c.send(DigitReceived(digit="9"))
    assert isinstance(out[0], EnqueueCall) and out[0].queue == "support"


COLLECT = """
flows:
  main:
    start: ask
    nodes:
      ask:
        type: collect
        prompts: [enter]
        variable: account
        min_length: 4
        max_length: 6
        terminator: "#"
        timeout: 5
        inter_digit_timeout: 2
        pattern: "[1-9][0-9]*"
        retries: 1
        invalid_prompts: [invalid]
        next: found
        on_failure: agent
      found: {type: queue, queue: found}
      agent: {type: queue, queue: support}
"""


def queued(out: list[object]) -> str:
    """The queue of the one EnqueueCall the session returned."""
    assert len(out) == 1 and isinstance(out[0], EnqueueCall), out
    return out[0].queue


def feed(c: FakeCall, digits: str) -> list[object]:
    out: list[object] = []
    for digit in digits:
        out.extend(c.send(DigitReceived(digit=digit), after=0.5))
    return out


def test_collect_terminator_ends_input() -> None:
    c = call(COLLECT)
    c.start()
    c.send(PromptFinished())
    assert queued(feed(c, "1234#")) == "found"
    assert c.session.record.variables["account"] == "1234"


def test_collect_max_length_ends_input_without_terminator() -> None:
    c = call(COLLECT)
    c.start()
    c.send(PromptFinished())
    assert queued(feed(c, "123456")) == "found"
    assert c.session.record.variables["account"] == "123456"


def test_collect_inter_digit_timeout_ends_input() -> None:
    c = call(COLLECT)
    c.start()
    c.send(PromptFinished())
    feed(c, "12345")
    assert c.session.get_timer() == c.now + 2.0
    assert queued(c.expire()) == "found"
    assert c.session.record.variables["account"] == "12345"


def test_collect_too_short_or_bad_pattern_retries_then_fails_over() -> None:
    c = call(COLLECT)
    c.start()
    c.send(PromptFinished())
    assert feed(c, "12#") == [PlayPrompt(prompts=names("invalid", "enter"), barge_in=True)]
    out = feed(c, "0123#")  # barge-in on the retry prompt; pattern forbids a leading 0
    assert out[0] == StopPrompt()
    assert isinstance(out[-1], EnqueueCall) and out[-1].queue == "support"
    assert [i.digits for i in c.session.record.inputs] == ["12", "0123"]


def test_collect_no_input_uses_first_digit_timeout() -> None:
    c = call(COLLECT)
    c.start()
    c.send(PromptFinished(), after=1.0)
    assert c.session.get_timer() == 6.0
    assert c.expire() == [PlayPrompt(prompts=names("enter",), barge_in=True)]  # no no_input_prompts given


def test_set_branch_and_templates() -> None:
    c = call("""
    flows:
      main:
        start: init
        nodes:
          init:
            type: set
            values: {greeting: "hi {caller}", count: 3, known: true}
            next: decide
          decide:
            type: branch
            cases:
              - when: {all: [{var: count, op: ge, value: 3}, {var: known, op: eq, value: true}]}
                goto: big
            default: small
          big: {type: queue, queue: big}
          small: {type: hangup}
    """, caller="42")
    assert queued(c.start()) == "big"
    assert c.session.record.variables["greeting"] == "hi 42"
    assert c.session.record.variables["count"] == 3


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("{var: caller, op: eq, value: '42'}", True),
        ("{var: caller, op: ne, value: '42'}", False),
        ("{var: caller, op: in, value: ['1', '42']}", True),
        ("{var: caller, op: matches, value: '4.'}", True),
        ("{var: caller, op: matches, value: '4'}", False),
        ("{var: called, op: exists}", True),
        ("{var: tier, op: exists}", False),
        ("{var: tier, op: ne, value: gold}", True),
        ("{not: {in_list: blocked}}", False),
        ("{any: [{in_list: blocked}, {var: caller, op: eq, value: x}]}", True),
    ],
)
def test_condition_operators(condition: str, expected: bool) -> None:
    c = call(f"""
    lists:
      blocked: ["42"]
    flows:
      main:
        start: decide
        nodes:
          decide:
            type: branch
            cases:
              - when: {condition}
                goto: hit
            default: miss
          hit: {{type: queue, queue: hit}}
          miss: {{type: set, values: {{tier: gold}}, next: miss_end}}
          miss_end: {{type: queue, queue: miss}}
    """, caller="42")
    assert queued(c.start()) == ("hit" if expected else "miss")


def test_tag_vip_alert_and_queue_priority() -> None:
    c = call("""
    flows:
      main:
        start: t
        nodes:
          t: {type: tag, vip: true, priority: 10, reason: vip, skills: {vip: 5}, alert: "VIP {caller}", next: q}
          q: {type: queue, queue: support, priority: 2, skills: {support: 1}}
    """, caller="1000")
    out = c.start()
    assert out[0] == TagCall(vip=True, priority=10, reason="vip", skills={"vip": 5})
    assert out[1] == RaiseAlert(kind="vip", message="VIP 1000", caller="1000")
    assert isinstance(out[2], EnqueueCall)
    assert (out[2].priority, out[2].vip, out[2].skills) == (10, True, {"vip": 5, "support": 1})


def test_voicemail_after_its_prompt_records_until_kept_then_hangs_up() -> None:
    c = call("""
    flows:
      main:
        start: vm
        nodes:
          vm: {type: voicemail, mailbox: sales, max_seconds: 60, prompts: [beep]}
    """)
    assert c.start() == [PlayPrompt(prompts=names("beep",), barge_in=False)]
    assert c.send(PromptFinished()) == [RecordVoicemail(mailbox="sales", max_seconds=60.0)]
    assert c.session.state is SessionState.RECORDING and c.session.outcome is None
    assert c.send(DigitReceived(digit="1")) == []  # only # ends the message
    assert c.send(DigitReceived(digit="#")) == [StopVoicemail()]
    assert c.send(VoicemailRecorded(seconds=3.2)) == [Hangup(reason=HangupReason.FLOW_ENDED)]
    assert c.session.outcome is Outcome.VOICEMAIL


def test_voicemail_goes_on_at_next_and_keys_of_the_prompt_are_not_a_stop() -> None:
    c = call("""
    flows:
      main:
        start: vm
        nodes:
          vm: {type: voicemail, mailbox: sales, prompts: [beep], beep: false, silence_seconds: 3, next: thanks}
          thanks: {type: hangup, prompts: [goodbye]}
    """)
    c.start()
    c.send(DigitReceived(digit="#"))  # pressed during the prompt: type-ahead, dropped when recording starts
    assert c.send(PromptFinished()) == [RecordVoicemail(mailbox="sales", max_seconds=120.0, silence_seconds=3.0,
                                                         beep=False)]
    assert c.send(VoicemailRecorded(seconds=10.0)) == [PlayPrompt(prompts=names("goodbye",), barge_in=False)]
    assert c.send(PromptFinished()) == [Hangup(reason=HangupReason.FLOW_ENDED)]
    assert c.session.outcome is Outcome.HUNG_UP


def test_voicemail_caller_hang_up_while_recording_is_a_message() -> None:
    c = call("""
    flows:
      main:
        start: vm
        nodes:
          vm: {type: voicemail, mailbox: sales, max_seconds: 30}
    """)
    assert c.start() == [RecordVoicemail(mailbox="sales", max_seconds=30.0)]
    assert c.send(CallerHungUp()) == []
    assert c.session.outcome is Outcome.VOICEMAIL


def test_voicemail_back_stop_timer_stops_and_goes_on() -> None:
    c = call("""
    flows:
      main:
        start: vm
        nodes:
          vm: {type: voicemail, mailbox: sales, max_seconds: 30}
    """)
    c.start()
    assert c.session.get_timer() == c.now + 30.0 + RECORD_GRACE
    assert c.expire() == [StopVoicemail(), Hangup(reason=HangupReason.FLOW_ENDED)]
    assert c.send(VoicemailRecorded(seconds=30.0)) == []  # late: the session has ended


def test_menu_visits_are_bounded_per_call() -> None:
    c = call("""
    flows:
      main:
        start: menu
        nodes:
          menu:
            type: menu
            prompts: [menu]
            options: {"9": menu, "1": sales}
            max_visits: 2
            on_failure: sales
          sales: {type: queue, queue: sales}
    """)
    c.start()
    c.send(PromptFinished())
    assert c.send(DigitReceived(digit="9")) == [PlayPrompt(prompts=names("menu",), barge_in=True)]
    c.send(PromptFinished())
    out = c.send(DigitReceived(digit="9"))  # third visit refused: straight to on_failure
    assert isinstance(out[0], EnqueueCall) and out[0].queue == "sales"


def test_caller_hang_up_finishes_silently_and_later_events_are_ignored() -> None:
    c = call(MENU)
    c.start()
    assert c.send(CallerHungUp()) == []
    assert c.session.outcome is Outcome.CALLER_HUNG_UP
    assert c.send(DigitReceived(digit="1")) == []
    assert c.session.handle_timer(1000.0) == []


def test_misuse_is_refused() -> None:
    fs = flows(MENU)
    with pytest.raises(UnknownFlowError):
        Session(fs, "nope", caller="1")
    s = Session(fs, "main", caller="1")
    s.start(0.0)
    with pytest.raises(LocalIvrError):
        s.start(1.0)


def test_logs_use_fixed_event_names() -> None:
    c = call(MENU)
    with capture_logs() as logs:
        c.start()
        c.send(DigitReceived(digit="1"))
    names = {e["event"] for e in logs}
    assert {"ivr.node.entered", "ivr.session.finished"} <= names
    assert all(name.startswith("ivr.") and name.count(".") == 2 for name in names)
