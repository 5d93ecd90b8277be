"""The IVR flow model: an immutable graph of nodes, grouped into a versioned flow set.

A :class:`FlowSet` is what the loader produces and what a :class:`~ivr.engine.Session`
runs against. It is never mutated: a reload builds a new set with a higher ``version``
and calls in progress keep the set they started on. No I/O happens here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from enum import Enum
from typing import NewType

FlowName = NewType("FlowName", str)
NodeId = NewType("NodeId", str)
PromptName = NewType("PromptName", str)
ListName = NewType("ListName", str)
CalendarName = NewType("CalendarName", str)

Value = str | int | bool
BUILTIN_VARS = frozenset({"caller", "called"})


class VarType(Enum):
    """Declared type of a call variable."""

    STR = "str"
    INT = "int"
    BOOL = "bool"


class CompareOp(Enum):
    """Operators of a :class:`Compare` condition."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LE = "le"
    GT = "gt"
    GE = "ge"
    IN = "in"
    MATCHES = "matches"
    EXISTS = "exists"


# -- conditions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Compare:
    """``{var: tier, op: eq, value: gold}``."""

    var: str
    op: CompareOp
    value: Value | tuple[Value, ...] | None = None
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InList:
    """``{in_list: vip}``: the variable (default ``caller``) is in a named number list."""

    list_name: ListName
    var: str = "caller"


@dataclass(frozen=True, slots=True, kw_only=True)
class BusinessHours:
    """``{business_hours: office}``: true while the calendar is open."""

    calendar: CalendarName


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeOfDay:
    """``{time_of_day: {from: "08:00", to: "20:00", timezone: Europe/Paris}}``; from > to wraps midnight."""

    start: time
    end: time
    timezone: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AllOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AnyOf:
    conditions: tuple[Condition, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Not:
    condition: Condition


Condition = Compare | InList | BusinessHours | TimeOfDay | AllOf | AnyOf | Not


# -- nodes ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    id: NodeId
    prompts: tuple[PromptName, ...]
    next: NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class Menu:
    """Play prompts (barge-in), wait ``timeout`` s for one digit; ``retries`` re-plays on invalid/no input."""

    id: NodeId
    prompts: tuple[PromptName, ...]
    options: Mapping[str, NodeId]
    timeout: float
    retries: int
    invalid_prompts: tuple[PromptName, ...]
    no_input_prompts: tuple[PromptName, ...]
    on_failure: NodeId
    store: str | None = None
    max_visits: int = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class Collect:
    """Collect ``min_length``..``max_length`` digits into ``variable``."""

    id: NodeId
    prompts: tuple[PromptName, ...]
    variable: str
    min_length: int
    max_length: int
    terminator: str | None
    timeout: float
    inter_digit_timeout: float
    pattern: re.Pattern[str] | None
    retries: int
    invalid_prompts: tuple[PromptName, ...]
    no_input_prompts: tuple[PromptName, ...]
    next: NodeId
    on_failure: NodeId
    max_visits: int = 3


@dataclass(frozen=True, slots=True, kw_only=True)
class SetVars:
    id: NodeId
    values: Mapping[str, Value]
    next: NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    when: Condition
    goto: NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class Branch:
    id: NodeId
    cases: tuple[Case, ...]
    default: NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultField:
    """Where a look-up result value comes from (dotted path in the JSON object) and its type."""

    path: tuple[str, ...]
    type: VarType


@dataclass(frozen=True, slots=True, kw_only=True)
class Lookup:
    id: NodeId
    url: str
    params: Mapping[str, str]
    timeout: float
    result: Mapping[str, ResultField]
    next: NodeId
    on_error: NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class Tag:
    id: NodeId
    vip: bool = False
    priority: int | None = None
    reason: str | None = None
    skills: Mapping[str, int] = field(default_factory=dict)
    alert: str | None = None
    next: NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class Queue:
    id: NodeId
    queue: str
    skills: Mapping[str, int] = field(default_factory=dict)
    priority: int | None = None
    prompts: tuple[PromptName, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Voicemail:
    """Play ``prompts``, beep, record the caller until ``#``, ``silence_seconds`` of silence, ``max_seconds``
    or a hang-up; then go on at ``next``, or hang up when there is none."""

    id: NodeId
    mailbox: str
    max_seconds: float
    prompts: tuple[PromptName, ...] = ()
    beep: bool = True
    silence_seconds: float = 5.0
    next: NodeId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SubFlow:
    id: NodeId
    flow: FlowName
    next: NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class Return:
    id: NodeId


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup:
    id: NodeId
    prompts: tuple[PromptName, ...] = ()


Node = (
    Play | Menu | Collect | SetVars | Branch | Lookup | Tag | Queue | Voicemail | SubFlow | Return | Hangup
)
INPUT_NODES = (Menu, Collect)
TERMINAL_NODES = (Queue, Voicemail, Return, Hangup)  # a voicemail without ``next`` ends the IVR


class EdgeKind(Enum):
    """How control leaves a node; ``AUTOMATIC`` edges are taken without waiting for the caller."""

    AUTOMATIC = "automatic"
    ON_INPUT = "on_input"


def edges(node: Node) -> Iterator[tuple[str, NodeId, EdgeKind]]:
    """Every outgoing edge as ``(field, target, kind)``.

    The ``on_failure`` edge of a menu or collect is automatic: it is taken without a wait
    once the node's retries or visits are used up. Every other edge of an input node needs
    the caller (or a timeout the caller caused) first.
    """
    match node:
        case Play() | SetVars() | Tag() | SubFlow():
            yield "next", node.next, EdgeKind.AUTOMATIC
        case Menu():
            for digit, target in node.options.items():
                yield f"options.{digit}", target, EdgeKind.ON_INPUT
            yield "on_failure", node.on_failure, EdgeKind.AUTOMATIC
        case Collect():
            yield "next", node.next, EdgeKind.ON_INPUT
            yield "on_failure", node.on_failure, EdgeKind.AUTOMATIC
        case Branch():
            for index, case in enumerate(node.cases):
                yield f"cases.{index}.goto", case.goto, EdgeKind.AUTOMATIC
            yield "default", node.default, EdgeKind.AUTOMATIC
        case Lookup():
            yield "next", node.next, EdgeKind.AUTOMATIC
            yield "on_error", node.on_error, EdgeKind.AUTOMATIC
        case Voicemail():
            # Automatic: the recording ends by itself (max_seconds), so a loop through it needs a menu.
            if node.next is not None:
                yield "next", node.next, EdgeKind.AUTOMATIC
        case Queue() | Return() | Hangup():
            return


@dataclass(frozen=True, slots=True, kw_only=True)
class Flow:
    name: FlowName
    start: NodeId
    nodes: Mapping[NodeId, Node]
    file: str = "<memory>"


@dataclass(frozen=True, slots=True, kw_only=True)
class Calendar:
    """Opening hours per ISO weekday (1 = Monday) in a time zone, minus holidays (local dates)."""

    name: CalendarName
    timezone: str
    hours: Mapping[int, tuple[tuple[time, time | None], ...]]
    holidays: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowSet:
    """Everything one version of the flow configuration holds. Immutable; sessions keep a reference."""

    version: int
    flows: Mapping[FlowName, Flow]
    lists: Mapping[ListName, frozenset[str]] = field(default_factory=dict)
    calendars: Mapping[CalendarName, Calendar] = field(default_factory=dict)
    var_types: Mapping[str, VarType] = field(default_factory=dict)
    prompt_seconds: Mapping[PromptName, float] = field(default_factory=dict)
