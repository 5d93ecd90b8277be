"""Identifiers and static configuration of the ACD: queues, agents, skills, overflow rules.

All configuration objects are frozen dataclasses validated in ``__post_init__``; an invalid
value raises ``ConfigurationError`` (never a bare ``ValueError``). Service-level variants follow
the domain spec §1.2 (``SlFormula``); interval attribution follows §0 (``Attribution``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NewType

from acd.errors import ConfigurationError

AgentId = NewType("AgentId", str)
CallId = NewType("CallId", str)
QueueId = NewType("QueueId", str)
SkillName = NewType("SkillName", str)
OfferId = NewType("OfferId", int)

MIN_LEVEL = 1
MAX_LEVEL = 10
DEFAULT_REASON_CODES = frozenset({"break", "lunch", "training", "meeting", "coaching", "personal", "system"})
NO_ANSWER_REASON = "no answer"
REJECTED_REASON = "rejected"
LOGIN_REASON = "login"
MAX_NO_ANSWER_REASON = "break"


class RoutingStrategy(enum.Enum):
    """How the router picks one agent among the eligible ready ones."""

    LONGEST_IDLE = "longest_idle"
    LEAST_CALLS = "least_calls"
    BEST_SKILL = "best_skill"
    ROUND_ROBIN = "round_robin"
    WEIGHTED_RANDOM = "weighted_random"


class SlFormula(enum.Enum):
    """Service-level variants of domain spec §1.2 (ICMI numbering in the comments)."""

    ANSWERED_ONLY = "answered_only"  # ICMI #2
    ABANDONS_NEGATIVE = "abandons_negative"  # ICMI #3
    ABANDONS_AFTER_T_NEGATIVE = "abandons_after_t_negative"  # ICMI #4, recommended default
    ABANDONS_IN_T_POSITIVE = "abandons_in_t_positive"  # ICMI #1
    SHORT_ABANDON_POSITIVE = "short_abandon_positive"  # ICMI #5


class Attribution(enum.Enum):
    """Which interval a finished leg is counted in (domain spec §0)."""

    ARRIVAL = "arrival"
    EVENT = "event"


class OverflowAction(enum.Enum):
    """What an overflow/escalation rule does once a call has waited ``after_s``."""

    RELAX_LEVEL = "relax_level"  # lower every minimum level by ``relax_by`` (floor 1)
    ADD_SKILL = "add_skill"  # also accept agents of the same queue holding ``skill`` >= ``min_level``
    ADD_QUEUE = "add_queue"  # also accept members of ``target_queue`` that meet that queue's skills
    VOICEMAIL = "voicemail"  # leave the queue: ExitCall(reason=OVERFLOW_VOICEMAIL)
    CALLBACK = "callback"  # leave the queue: ExitCall(reason=OVERFLOW_CALLBACK)
    EXIT = "exit"  # leave the queue towards ``target`` (e.g. another number or flow)


EXIT_ACTIONS = frozenset({OverflowAction.VOICEMAIL, OverflowAction.CALLBACK, OverflowAction.EXIT})


def check_level(level: int, what: str) -> None:
    """Raise ``ConfigurationError`` unless ``MIN_LEVEL <= level <= MAX_LEVEL``."""
    if isinstance(level, bool) or not isinstance(level, int) or not MIN_LEVEL <= level <= MAX_LEVEL:
        raise ConfigurationError(f"{what}: skill level must be an int in [{MIN_LEVEL}, {MAX_LEVEL}], got {level!r}")


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class SkillRequirement:
    """A required skill with its minimum level."""

    skill: SkillName
    min_level: int = MIN_LEVEL

    def __post_init__(self) -> None:
        if not self.skill:
            raise ConfigurationError("skill name must not be empty")
        check_level(self.min_level, f"skill {self.skill!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class OverflowRule:
    """After a call has waited ``after_s`` seconds in its home queue, apply ``action``."""

    after_s: float
    action: OverflowAction
    relax_by: int = 1
    skill: SkillName | None = None
    min_level: int = MIN_LEVEL
    target_queue: QueueId | None = None
    target: str | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.after_s) or self.after_s < 0:
            raise ConfigurationError(f"overflow after_s must be a finite number >= 0, got {self.after_s!r}")
        if self.action is OverflowAction.RELAX_LEVEL and self.relax_by < 1:
            raise ConfigurationError("RELAX_LEVEL needs relax_by >= 1")
        if self.action is OverflowAction.ADD_SKILL:
            if not self.skill:
                raise ConfigurationError("ADD_SKILL needs a skill")
            check_level(self.min_level, f"overflow skill {self.skill!r}")
        if self.action is OverflowAction.ADD_QUEUE and not self.target_queue:
            raise ConfigurationError("ADD_QUEUE needs a target_queue")


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueConfig:
    """Static configuration of one ACD queue.

    ``wrap_up_s``: after-call work length; 0 sends the agent straight back to ready, ``None``
    means wrap-up lasts until the agent ends it. ``priority_aging_s``: a waiting call gains one
    priority step every that many seconds (None: no aging). ``no_answer_reason`` /
    ``reject_reason``: the not-ready reason given to an agent who lets an offer time out or rejects
    it; ``None`` puts the agent back to ready instead. ``max_wait_target`` / ``full_target``: where a
    call goes when it leaves on ``max_wait_s`` / ``max_size`` (the ``target`` of its ``ExitCall``, e.g. the
    flow it goes on in); ``None``: nowhere named, the controller ends the call.
    """

    id: QueueId
    skills: tuple[SkillRequirement, ...] = ()
    strategy: RoutingStrategy = RoutingStrategy.LONGEST_IDLE
    ring_timeout_s: float = 15.0
    wrap_up_s: float | None = 0.0
    max_wait_s: float | None = None
    max_size: int | None = None
    max_wait_target: str | None = None
    full_target: str | None = None
    overflow: tuple[OverflowRule, ...] = ()
    priority_aging_s: float | None = None
    no_answer_reason: str | None = NO_ANSWER_REASON
    reject_reason: str | None = REJECTED_REASON
    sl_threshold_s: float = 20.0
    sl_target: float = 0.8
    sl_formula: SlFormula = SlFormula.ABANDONS_AFTER_T_NEGATIVE
    include_flowouts: bool = False
    short_abandon_s: float = 5.0
    interval_s: float = 1800.0
    attribution: Attribution = Attribution.ARRIVAL
    default_handle_s: float = 180.0

    def __post_init__(self) -> None:
        if not self.id:
            raise ConfigurationError("queue id must not be empty")
        names = [r.skill for r in self.skills]
        if len(set(names)) != len(names):
            raise ConfigurationError(f"queue {self.id}: a skill is listed twice")
        positive = {"ring_timeout_s": self.ring_timeout_s, "interval_s": self.interval_s,
                    "default_handle_s": self.default_handle_s}
        optional = {"max_wait_s": self.max_wait_s, "priority_aging_s": self.priority_aging_s}
        for name, value in [*positive.items(), *optional.items()]:
            if value is not None and (not math.isfinite(value) or value <= 0):
                raise ConfigurationError(f"queue {self.id}: {name} must be > 0, got {value!r}")
        if self.wrap_up_s is not None and (not math.isfinite(self.wrap_up_s) or self.wrap_up_s < 0):
            raise ConfigurationError(f"queue {self.id}: wrap_up_s must be >= 0 or None")
        if self.max_size is not None and self.max_size < 0:
            raise ConfigurationError(f"queue {self.id}: max_size must be >= 0")
        if not 0 <= self.short_abandon_s <= self.sl_threshold_s:
            raise ConfigurationError(f"queue {self.id}: need 0 <= short_abandon_s <= sl_threshold_s (S <= T)")
        if not 0 < self.sl_target <= 1:
            raise ConfigurationError(f"queue {self.id}: sl_target must be in (0, 1]")
        if list(self.overflow) != sorted(self.overflow, key=lambda r: r.after_s):
            raise ConfigurationError(f"queue {self.id}: overflow rules must be sorted by after_s")


@dataclass(frozen=True, slots=True, kw_only=True)
class AgentConfig:
    """An agent: skills with levels (1-10), the queues served, a weight for weighted-random routing.

    The phone rules follow FreeSWITCH mod_callcenter's agent model: after an offer the agent's phone
    did not answer (``no_answer_delay_s``), declined (``reject_delay_s``) or answered busy
    (``busy_delay_s``), the agent is offered no call for that long, whatever its state meanwhile
    (it may be ready: it is simply passed over until then). ``max_no_answer`` consecutive no-answers
    (an answered call resets the count) put the agent not ready with ``max_no_answer_reason``; 0 never.
    """

    id: AgentId
    name: str = ""
    skills: Mapping[SkillName, int] = field(default_factory=lambda: MappingProxyType({}))
    queues: frozenset[QueueId] = frozenset()
    weight: float = 1.0
    no_answer_delay_s: float = 0.0
    reject_delay_s: float = 0.0
    busy_delay_s: float = 0.0
    max_no_answer: int = 0
    max_no_answer_reason: str = MAX_NO_ANSWER_REASON

    def __post_init__(self) -> None:
        if not self.id:
            raise ConfigurationError("agent id must not be empty")
        for skill, level in self.skills.items():
            check_level(level, f"agent {self.id} skill {skill!r}")
        if not math.isfinite(self.weight) or self.weight <= 0:
            raise ConfigurationError(f"agent {self.id}: weight must be > 0")
        for name in ("no_answer_delay_s", "reject_delay_s", "busy_delay_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ConfigurationError(f"agent {self.id}: {name} must be a finite number >= 0, got {value!r}")
        if isinstance(self.max_no_answer, bool) or not isinstance(self.max_no_answer, int) or self.max_no_answer < 0:
            raise ConfigurationError(f"agent {self.id}: max_no_answer must be an int >= 0, got {self.max_no_answer!r}")
        if not self.max_no_answer_reason:
            raise ConfigurationError(f"agent {self.id}: max_no_answer_reason must not be empty")
        object.__setattr__(self, "skills", MappingProxyType(dict(self.skills)))
        object.__setattr__(self, "queues", frozenset(self.queues))
