"""The ACD on the event loop: one :class:`acd.Router`, one ``call_at`` timer, outputs dispatched.

The router is pure; this adapter (the only one: ``acd`` has no asyncio) gives it the node's
monotonic clock, fires its timer, and hands every output to the owner (the call registry) in
order from an outbox: ``AcdEvent`` facts to ``on_acd_event``, ``AcdCommand`` instructions to
``on_acd_command``. A request the router refuses raises its ``RequestError`` to the caller, with
nothing changed.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

import structlog

from acd import (
    DEFAULT_REASON_CODES,
    AcdCommand,
    AcdEvent,
    AcdOutput,
    AcdRequest,
    AgentConfig,
    AgentId,
    OverflowAction,
    OverflowRule,
    QueueConfig,
    QueueId,
    Router,
    RoutingStrategy,
    SkillName,
    SkillRequirement,
    SlFormula,
)
from config.errors import Problem
from config.schema import AgentConfig as AgentSettings
from config.schema import OverflowRuleConfig
from config.schema import QueueConfig as QueueSettings
from config.yamlsource import Located
from cti.call.core import personal_skill
from ivr import FlowName, FlowSet
from ivr.flow import Queue, SubFlow, Voicemail

log = structlog.get_logger(__name__)


class AcdOwner(Protocol):
    def on_acd_event(self, event: AcdEvent) -> None: ...

    def on_acd_command(self, command: AcdCommand) -> None: ...


# The config's strategy names; ``random`` is the router's weighted random with every agent's weight 1.
_STRATEGIES = {"longest_idle": RoutingStrategy.LONGEST_IDLE, "least_calls": RoutingStrategy.LEAST_CALLS,
               "best_skill": RoutingStrategy.BEST_SKILL, "round_robin": RoutingStrategy.ROUND_ROBIN,
               "random": RoutingStrategy.WEIGHTED_RANDOM}


def queue_config(settings: QueueSettings) -> QueueConfig:
    """The router's view of a configured queue."""
    return QueueConfig(
        id=QueueId(settings.name),
        skills=tuple(SkillRequirement(skill=SkillName(s), min_level=level) for s, level in settings.skills.items()),
        strategy=_STRATEGIES[settings.strategy],
        ring_timeout_s=settings.ring_timeout_s,
        wrap_up_s=settings.wrap_up_s,
        max_wait_s=settings.max_wait_s,
        max_size=settings.max_size,
        max_wait_target=settings.on_max_wait.flow if settings.on_max_wait else None,
        full_target=settings.on_full.flow if settings.on_full else None,
        sl_threshold_s=settings.sl_threshold_s,
        sl_target=settings.sl_target,
        sl_formula=SlFormula(settings.sl_formula),
        include_flowouts=settings.include_flowouts,
        short_abandon_s=settings.short_abandon_s,
        priority_aging_s=settings.priority_aging_s,
        overflow=tuple(overflow_rule(rule) for _, rule in settings.overflow_in_order()),
        no_answer_reason=settings.no_answer_reason,
        reject_reason=settings.reject_reason,
    )


def overflow_rule(settings: OverflowRuleConfig) -> OverflowRule:
    """The router's view of a configured overflow rule. An exit's ``target`` is the flow the call goes
    on in (:meth:`cti.call.shell.Call.on_acd_command`).

    Raises:
        ValueError: ``callback`` (the schema refuses it first).
    """
    after = settings.after_s
    match settings.action:
        case "relax_level":
            return OverflowRule(after_s=after, action=OverflowAction.RELAX_LEVEL, relax_by=settings.relax_by or 1)
        case "add_skill":
            return OverflowRule(after_s=after, action=OverflowAction.ADD_SKILL, skill=SkillName(settings.skill or ""),
                                min_level=settings.min_level or 1)
        case "add_queue":
            return OverflowRule(after_s=after, action=OverflowAction.ADD_QUEUE,
                                target_queue=QueueId(settings.queue or ""))
        case "to_flow":
            return OverflowRule(after_s=after, action=OverflowAction.EXIT, target=settings.flow)
        case "voicemail":
            return OverflowRule(after_s=after, action=OverflowAction.VOICEMAIL, target=settings.flow)
        case _:
            raise ValueError(f"overflow action {settings.action!r} has no ACD rule")


def overflow_flow_problems(located: Located, queues: Iterable[QueueSettings], flows: FlowSet) -> list[Problem]:
    """Every exit of a queue (an overflow rule's, ``on_max_wait``, ``on_full``) names a flow of ``flows``; a
    voicemail exit's flow has a voicemail node; a hard limit's flow cannot queue the call in that queue again
    (from a full queue that would loop without end; after ``max_wait_s`` it would undo the limit)."""
    problems: list[Problem] = []
    for q_index, queue in enumerate(queues):
        exits: list[tuple[tuple[str | int, ...], str, str, str, bool]] = [  # path, key, action, flow, hard limit
            (("queues", q_index, "overflow", r_index, "flow"), "overflow", rule.action, rule.flow, False)
            for r_index, rule in enumerate(queue.overflow) if rule.exits and rule.flow is not None]
        exits += [(("queues", q_index, key, "flow"), key, target.action, target.flow, True)
                  for key, target in (("on_max_wait", queue.on_max_wait), ("on_full", queue.on_full))
                  if target is not None]
        for path, key, action, name, hard in exits:
            flow = flows.flows.get(FlowName(name))
            if flow is None:
                problems.append(located.problem(path, f"queue {queue.name!r}: {key} to unknown flow {name!r} "
                                                f"(flows: {', '.join(sorted(flows.flows)) or 'none'})"))
                continue
            if action == "voicemail" and not any(isinstance(n, Voicemail) for n in flow.nodes.values()):
                problems.append(located.problem(path, f"queue {queue.name!r}: {key} to voicemail flow {name!r}, "
                                                "which has no voicemail node"))
            if hard and (node := _queues_again(flows, FlowName(name), queue.name)) is not None:
                problems.append(located.problem(path, f"queue {queue.name!r}: {key} flow {name!r} queues the call in "
                                                f"{queue.name!r} again (node {node}): send it somewhere else"))
    return problems


def _queues_again(flows: FlowSet, start: FlowName, queue: str) -> str | None:
    """The first ``queue`` node for ``queue`` in flow ``start`` or the sub-flows it calls, else None."""
    seen: set[FlowName] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or (flow := flows.flows.get(name)) is None:
            continue
        seen.add(name)
        for node in flow.nodes.values():
            if isinstance(node, Queue) and node.queue == queue:
                return f"{name}.{node.id}"
            if isinstance(node, SubFlow):
                todo.append(node.flow)
    return None


def reason_codes(pause_reasons: Iterable[str]) -> frozenset[str]:
    """The not-ready reasons the router accepts from agents: the ACD's own and the desks' (``desk.pause_reasons``),
    so every code a desktop offers is one the node takes."""
    return DEFAULT_REASON_CODES | frozenset(pause_reasons)



def agent_config(settings: AgentSettings, queues: Iterable[QueueSettings]) -> AgentConfig:
    """The router's view of an agent: its configured skills plus its personal skill (level 1), and
    every queue whose skills it has at the minimum level (a queue requiring ``agent:<id>`` is that
    agent's personal queue)."""
    skills = {SkillName(k): v for k, v in settings.skills.items()}
    skills[personal_skill(settings.id)] = 1
    served = frozenset(
        QueueId(q.name) for q in queues
        if all(skills.get(SkillName(skill), 0) >= level for skill, level in q.skills.items())
    )
    return AgentConfig(id=AgentId(settings.id), name=settings.name, skills=skills, queues=served,
                       no_answer_delay_s=settings.no_answer_delay_s, reject_delay_s=settings.reject_delay_s,
                       busy_delay_s=settings.busy_delay_s, max_no_answer=settings.max_no_answer,
                       max_no_answer_reason=settings.max_no_answer_reason)


class AcdDriver:
    """Runs a :class:`Router` with the node's clock: the node's one ACD adapter.

    A request is applied at once (so a refusal reaches the requester, with nothing changed); its
    outputs join an outbox that is dispatched to the owner in order. A request made while the
    outbox is being dispatched (an owner reacting to an output) is applied at once too, and its
    outputs queue behind the ones still waiting: the router is never re-entered, and no output is
    handed over inside the router's own step. Calls receive their commands as queued events
    (:meth:`cti.call.shell.Call.feed`).
    """

    def __init__(self, router: Router, owner: AcdOwner, *, clock: Callable[[], float] | None = None) -> None:
        self.router = router
        self._owner = owner
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when: float | None = None  # the router's deadline the timer is armed for
        self._outbox: deque[AcdOutput] = deque()
        self._dispatching = False

    def now(self) -> float:
        if self._clock is None:  # the loop's clock, looked up once (each look-up is a syscall on 3.11)
            self._clock = asyncio.get_running_loop().time
        return self._clock()

    def handle(self, request: AcdRequest) -> None:
        """Apply one request now; its outputs are dispatched in order after those already waiting.

        Raises:
            acd.RequestError: the router refused the request (nothing changed).
        """
        self._outbox.extend(self.router.handle(request, self.now()))
        self._dispatch()

    def _dispatch(self) -> None:
        if self._dispatching:
            return  # the outer dispatch takes them, in order
        self._dispatching = True
        try:
            while self._outbox:
                output = self._outbox.popleft()
                try:
                    if isinstance(output, AcdEvent):
                        self._owner.on_acd_event(output)
                    elif isinstance(output, AcdCommand):
                        self._owner.on_acd_command(output)
                except Exception as exc:  # one failing handler must not lose the outputs after it
                    log.error("acd.output.failed", output=type(output).__name__, error=repr(exc), exc_info=exc)
        finally:
            self._dispatching = False
        self._arm()

    def _arm(self) -> None:
        when = self.router.get_timer()
        if self._timer is not None:
            if when == self._timer_when:  # most requests leave the next deadline where it was
                return
            self._timer.cancel()
            self._timer = None
        if when is not None:
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(loop.time() + max(0.0, when - self.now()), self._fire)
            self._timer_when = when

    def _fire(self) -> None:
        self._timer = None
        self._outbox.extend(self.router.handle_timer(self.now()))
        self._dispatch()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
