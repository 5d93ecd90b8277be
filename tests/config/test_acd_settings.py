"""The ACD settings of queues and agents: each refused with file:line: reason, and each reaching the router."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from acd import AgentId, OfferCall, OverflowAction, QueueId, RequeueReason, Router
from acd.events import CallExited, CallRequeued, Enqueue, LoginAgent
from config.errors import ConfigFileError
from config.loader import check_config, load_config
from cti.app import check_everything
from cti.node.routing import agent_config, queue_config

HEAD = "agents:\n  - {id: a1, password: secret1, skills: {sales: 3}}\nqueues:\n"


def write(tmp: Path, text: str) -> Path:
    path = tmp / "cti.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "line", "reason"), [
    (HEAD + "  - {name: q1, priority_aging_s: 0}\n", 4, "queues.0.priority_aging_s: Input should be greater than 0"),
    (HEAD + "  - {name: q1, priority_aging_s: -5}\n", 4, "queues.0.priority_aging_s: Input should be greater than 0"),
    (HEAD + "  - name: q1\n    overflow:\n      - {after_s: -1, action: relax_level}\n", 6,
     "queues.0.overflow.0.after_s: Input should be greater than or equal to 0"),
    (HEAD + "  - name: q1\n    overflow:\n      - {after_s: 5, action: teleport}\n", 6,
     "queues.0.overflow.0.action: Input should be 'relax_level'"),
    (HEAD + "  - name: q1\n    overflow:\n      - {after_s: 5, action: callback}\n", 6,
     "action 'callback' is not available: the node has no call-back store"),
    (HEAD + "  - name: q1\n    overflow:\n      - {after_s: 5, action: add_skill}\n", 6,
     "action 'add_skill' needs skill"),
    (HEAD + "  - name: q1\n    overflow:\n      - {after_s: 5, action: add_queue, queue: q1, flow: x}\n", 6,
     "action 'add_queue' takes no flow"),
    (HEAD + "  - name: q1\n    overflow:\n      - {after_s: 5, action: to_flow}\n", 6, "action 'to_flow' needs flow"),
    (HEAD + "  - name: q1\n    overflow:\n      - {after_s: 5, action: relax_level, relax_by: 0}\n", 6,
     "queues.0.overflow.0.relax_by: Input should be greater than or equal to 1"),
    (HEAD + "  - name: q1\n    overflow:\n      - {after_s: 5, action: add_skill, skill: vip, min_level: 11}\n", 6,
     "queues.0.overflow.0.min_level: Input should be less than or equal to 10"),
    (HEAD + "  - name: q1\n    overflow:\n      - {after_s: 5, action: add_queue, queue: nope}\n", 6,
     "queue 'q1': overflow to unknown queue 'nope'"),
    (HEAD + "  - name: q1\n    overflow:\n      - {after_s: 5, action: add_queue, queue: q1}\n", 6,
     "queue 'q1': overflow to itself"),
    (HEAD + "  - name: q1\n    overflow:\n      - {after_s: 60, action: relax_level}\n"
     "      - {after_s: 30, action: to_flow, flow: main}\n", 6,
     "overflow rule at after_s 60 never applies: the call has left the queue by an exit rule at after_s 30"),
    (HEAD + "  - name: q1\n    max_wait_s: 60\n", 4,
     "queue 'q1': max_wait_s needs on_max_wait ({action: to_flow, flow: ...} or {action: voicemail, flow: ...}): "
     "a caller at the limit is never just hung up"),
    (HEAD + "  - {name: q1, max_size: 3}\n", 4, "queue 'q1': max_size needs on_full"),
    (HEAD + "  - name: q1\n    on_full: {action: to_flow, flow: main}\n", 4,
     "queue 'q1': on_full without max_size is never used"),
    (HEAD + "  - name: q1\n    max_wait_s: 60\n    on_max_wait: {action: hangup, flow: main}\n", 6,
     "queues.0.on_max_wait.action: Input should be 'to_flow' or 'voicemail'"),
    (HEAD + "  - name: q1\n    max_size: 2\n    on_full: {action: voicemail}\n", 6,
     "queues.0.on_full.flow: Field required"),
    (HEAD + "  - name: q1\n    max_size: 2\n    on_full: {action: voicemail, flow: main, after_s: 3}\n", 6,
     "queues.0.on_full.after_s: Extra inputs are not permitted"),
    (HEAD + "  - {name: q1, no_answer_reason: coffee}\n", 4,
     "queue 'q1': no_answer_reason 'coffee' is not one of desk.pause_reasons"),
    (HEAD + "  - {name: q1, reject_reason: coffee}\n", 4,
     "queue 'q1': reject_reason 'coffee' is not one of desk.pause_reasons"),
    ("agents:\n  - id: a1\n    password: secret1\n    no_answer_delay_s: -1\n", 4,
     "agents.0.no_answer_delay_s: Input should be greater than or equal to 0"),
    ("agents:\n  - {id: a1, password: secret1, busy_delay_s: .nan}\n", 2, "agents.0.busy_delay_s"),
    ("agents:\n  - {id: a1, password: secret1, max_no_answer: -2}\n", 2,
     "agents.0.max_no_answer: Input should be greater than or equal to 0"),
    ("agents:\n  - id: a1\n    password: secret1\n    max_no_answer: 3\n", 4,
     "agent 'a1': max_no_answer_reason 'break' is not one of desk.pause_reasons"),
    ("desk: {pause_reasons: [lunch]}\nagents:\n  - id: a1\n    password: secret1\n    max_no_answer: 3\n"
     "    max_no_answer_reason: nap\n", 6, "agent 'a1': max_no_answer_reason 'nap' is not one of"),
])
def test_a_bad_acd_setting_is_refused_with_file_line_and_reason(tmp_path: Path, text: str, line: int,
                                                                 reason: str) -> None:
    if "max_no_answer: 3\n" in text and "desk:" not in text:
        text = "desk: {pause_reasons: [lunch]}\n" + text
        line += 1
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    rendered = [str(p) for p in caught.value.problems]
    assert any(r.startswith(f"{path}:{line}: ") and reason in r for r in rendered), rendered
    assert [str(p) for p in check_config(path)] == rendered


def test_good_settings_load_and_the_built_in_reasons_are_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + textwrap.dedent("""\
          - name: q1
            priority_aging_s: 10
            no_answer_reason: "no answer"
            reject_reason: null
            overflow:
              - {after_s: 90, action: to_flow, flow: main}
              - {after_s: 30, action: add_skill, skill: support}
              - {after_s: 30, action: relax_level, relax_by: 2}
              - {after_s: 60, action: add_queue, queue: q2}
          - {name: q2}
        """))
    config = load_config(path).config
    router_view = queue_config(config.queues[0])
    assert router_view.priority_aging_s == 10 and router_view.reject_reason is None
    # sorted by after_s for the user; equal times keep the file's order
    assert [(r.after_s, r.action) for r in router_view.overflow] == [
        (30, OverflowAction.ADD_SKILL), (30, OverflowAction.RELAX_LEVEL), (60, OverflowAction.ADD_QUEUE),
        (90, OverflowAction.EXIT)]
    assert router_view.overflow[1].relax_by == 2 and router_view.overflow[3].target == "main"


def _flows(tmp: Path) -> Path:
    flows = tmp / "flows"
    flows.mkdir()
    (flows / "f.yaml").write_text(textwrap.dedent("""\
        flows:
          main:
            start: q
            nodes:
              q: {type: queue, queue: q1}
          closed:
            start: bye
            nodes:
              bye: {type: hangup}
          messages:
            start: record
            nodes:
              record: {type: voicemail, mailbox: sales}
        """))
    (tmp / "prompts").mkdir()
    return flows


@pytest.mark.parametrize(("rule", "reason"), [
    ("{after_s: 5, action: to_flow, flow: nowhere}", "queue 'q1': overflow to unknown flow 'nowhere' (flows: closed, "
                                                     "main, messages)"),
    ("{after_s: 5, action: voicemail, flow: closed}", "queue 'q1': overflow to voicemail flow 'closed', which has no "
                                                      "voicemail node"),
])
def test_an_overflow_to_a_missing_flow_is_refused_by_config_check_and_at_start(tmp_path: Path, rule: str,
                                                                               reason: str) -> None:
    _flows(tmp_path)
    path = write(tmp_path, f"flows_dir: flows\nprompts_dir: prompts\n{HEAD}  - name: q1\n    overflow:\n"
                           f"      - {rule}\n")
    loaded = load_config(path)
    assert [str(p) for p in check_everything(loaded)] == [f"{path}:8: {reason}"]
    from cti.node.controller import CallController

    controller = CallController.__new__(CallController)  # only what load() uses
    from ivr import FlowCatalog

    controller.flows = FlowCatalog(loaded.flows_dir, loaded.prompts_dir)
    controller.config = loaded.config
    controller._located = loaded.source
    with pytest.raises(ConfigFileError) as caught:
        controller.load()
    assert [str(p) for p in caught.value.problems] == [f"{path}:8: {reason}"]


@pytest.mark.parametrize(("settings", "line", "reason"), [
    ("max_wait_s: 60\n    on_max_wait: {action: to_flow, flow: nowhere}\n", 8,
     "queue 'q1': on_max_wait to unknown flow 'nowhere' (flows: closed, main, messages)"),
    ("max_size: 5\n    on_full: {action: voicemail, flow: closed}\n", 8,
     "queue 'q1': on_full to voicemail flow 'closed', which has no voicemail node"),
    ("max_size: 5\n    on_full: {action: to_flow, flow: main}\n", 8,
     "queue 'q1': on_full flow 'main' queues the call in 'q1' again (node main.q): send it somewhere else"),
    ("max_wait_s: 60\n    on_max_wait: {action: to_flow, flow: via_sub}\n", 8,
     "queue 'q1': on_max_wait flow 'via_sub' queues the call in 'q1' again (node main.q)"),
])
def test_a_hard_limit_exit_to_a_flow_that_cannot_take_the_call_is_refused(tmp_path: Path, settings: str, line: int,
                                                                          reason: str) -> None:
    flows = _flows(tmp_path)
    if "via_sub" in settings:  # the queue node of a sub-flow counts too
        (flows / "sub.yaml").write_text("flows:\n  via_sub:\n    start: s\n    nodes:\n"
                                        "      s: {type: subflow, flow: main, next: bye}\n      bye: {type: hangup}\n")
    path = write(tmp_path, f"flows_dir: flows\nprompts_dir: prompts\n{HEAD}  - name: q1\n    {settings}")
    rendered = [str(p) for p in check_everything(load_config(path))]
    assert len(rendered) == 1 and rendered[0].startswith(f"{path}:{line}: ") and reason in rendered[0], rendered


def test_hard_limit_exits_load_and_reach_the_router(tmp_path: Path) -> None:
    _flows(tmp_path)
    path = write(tmp_path, f"flows_dir: flows\nprompts_dir: prompts\n{HEAD}" + textwrap.dedent("""\
          - name: q1
            max_wait_s: 40
            on_max_wait: {action: voicemail, flow: messages}
            max_size: 1
            on_full: {action: to_flow, flow: closed}
        """))
    loaded = load_config(path)
    assert check_everything(loaded) == []
    router = Router([queue_config(q) for q in loaded.config.queues])
    router.handle(Enqueue(call_id="c1", queue_id=QueueId("q1")), 0.0)  # type: ignore[arg-type]
    full = router.handle(Enqueue(call_id="c2", queue_id=QueueId("q1")), 1.0)  # type: ignore[arg-type]
    assert [(o.reason.value, o.target) for o in full if isinstance(o, CallExited)] == [("queue_full", "closed")]
    waited = router.handle_timer(40.0)
    assert [(o.reason.value, o.target) for o in waited if isinstance(o, CallExited)] == [("max_wait", "messages")]


def test_the_demo_queues_have_exits_for_their_hard_limits() -> None:
    loaded = load_config(Path(__file__).resolve().parents[2] / "config" / "demo.yaml")
    assert check_everything(loaded) == []
    for queue in loaded.config.queues:
        assert queue.max_wait_s and queue.on_max_wait and queue.on_max_wait.action == "voicemail", queue
        assert queue.max_size and queue.on_full and queue.on_full.action == "voicemail", queue


def test_priority_aging_from_the_config_lets_an_old_low_priority_call_overtake(tmp_path: Path) -> None:
    path = write(tmp_path, HEAD + "  - {name: q1, priority_aging_s: 5}\n")
    config = load_config(path).config
    router = Router([queue_config(q) for q in config.queues])
    router.handle(LoginAgent(agent=agent_config(config.agents[0], config.queues), ready=False), 0.0)
    router.handle(Enqueue(call_id="old", queue_id=QueueId("q1"), priority=0), 0.0)  # type: ignore[arg-type]
    router.handle(Enqueue(call_id="new", queue_id=QueueId("q1"), priority=3), 20.0)  # type: ignore[arg-type]
    # at 20 s: old = 0 + 20/5 = 4 > new = 3 + 0 = 3
    from acd import SetReady

    out = router.handle(SetReady(agent_id=AgentId("a1")), 20.0)
    assert [o.call_id for o in out if isinstance(o, OfferCall)] == ["old"]
    without = write(tmp_path, HEAD + "  - {name: q1}\n")  # the same without aging: priority wins
    config = load_config(without).config
    router = Router([queue_config(q) for q in config.queues])
    router.handle(LoginAgent(agent=agent_config(config.agents[0], config.queues), ready=False), 0.0)
    router.handle(Enqueue(call_id="old", queue_id=QueueId("q1"), priority=0), 0.0)  # type: ignore[arg-type]
    router.handle(Enqueue(call_id="new", queue_id=QueueId("q1"), priority=3), 20.0)  # type: ignore[arg-type]
    out = router.handle(SetReady(agent_id=AgentId("a1")), 20.0)
    assert [o.call_id for o in out if isinstance(o, OfferCall)] == ["new"]


def test_agent_phone_rules_and_queue_reasons_reach_the_router(tmp_path: Path) -> None:
    path = write(tmp_path, textwrap.dedent("""\
        desk: {pause_reasons: [lunch, missed]}
        agents:
          - {id: a1, password: secret1, no_answer_delay_s: 7, max_no_answer: 2, max_no_answer_reason: lunch}
        queues:
          - {name: q1, no_answer_reason: null, ring_timeout_s: 10,
             overflow: [{after_s: 100, action: to_flow, flow: main}]}
        """))
    config = load_config(path).config
    agent = agent_config(config.agents[0], config.queues)
    assert (agent.no_answer_delay_s, agent.max_no_answer, agent.max_no_answer_reason) == (7, 2, "lunch")
    router = Router([queue_config(q) for q in config.queues])
    router.handle(LoginAgent(agent=agent, ready=True), 0.0)
    router.handle(Enqueue(call_id="c", queue_id=QueueId("q1")), 0.0)  # type: ignore[arg-type]
    out = router.handle_timer(10.0)  # no answer: ready, passed over for 7 s
    assert [o.reason for o in out if isinstance(o, CallRequeued)] == [RequeueReason.NO_ANSWER]
    assert router.get_timer() == 17.0
    router.handle_timer(17.0)  # offered again
    router.handle_timer(27.0)  # second no-answer in a row: lunch
    assert router.agent_state(AgentId("a1"))[1] == "lunch"
    out = router.handle_timer(100.0)
    assert [(o.reason.value, o.target) for o in out if isinstance(o, CallExited)] == [("overflow_exit", "main")]


@pytest.mark.parametrize("strategy", ["longest_idle", "least_calls", "best_skill", "round_robin", "random"])
def test_every_configurable_strategy_reaches_the_router(tmp_path: Path, strategy: str) -> None:
    config = load_config(write(tmp_path, HEAD + f"  - {{name: q1, strategy: {strategy}}}\n")).config
    expected = "weighted_random" if strategy == "random" else strategy
    assert queue_config(config.queues[0]).strategy.value == expected


def test_an_overflow_to_a_voicemail_flow_is_accepted(tmp_path: Path) -> None:
    _flows(tmp_path)
    path = write(tmp_path, f"flows_dir: flows\nprompts_dir: prompts\n{HEAD}  - name: q1\n    overflow:\n"
                           f"      - {{after_s: 60, action: voicemail, flow: messages}}\n")
    loaded = load_config(path)
    assert check_everything(loaded) == []
    (rule,) = queue_config(loaded.config.queues[0]).overflow
    assert (rule.action, rule.target) == (OverflowAction.VOICEMAIL, "messages")
