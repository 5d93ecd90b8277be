"""The pure IVR interpreter: one :class:`Session` per call.

Sans-I/O domain core (see ``style.md``): the session never reads a clock, never sleeps and
never touches a socket. Feed it events with the current time and execute the commands it
returns; arm one timer at :meth:`Session.get_timer` and call :meth:`Session.handle_timer`.
``now`` is POSIX time in seconds (business hours need the wall clock).

A session keeps a reference to the :class:`~ivr.flow.FlowSet` it started on, so a hot
reload never changes a call in progress.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import structlog

from ivr.conditions import evaluate
from ivr.errors import LocalIvrError, UnknownFlowError
from ivr.events import (
    CallerHungUp,
    Command,
    DigitReceived,
    Hangup,
    HangupReason,
    InputTaken,
    IvrEvent,
    LookupCompleted,
    LookupFailed,
    LookupId,
    PlayPrompt,
    PromptFinished,
    RaiseAlert,
    RecordVoicemail,
    StartLookup,
    StopPrompt,
    StopVoicemail,
    TagCall,
    VoicemailRecorded,
)
from ivr.flow import (
    Branch,
    Collect,
    Flow,
    FlowName,
    FlowSet,
    Lookup,
    Menu,
    NodeId,
    Play,
    PromptName,
    Queue,
    Return,
    SetVars,
    SubFlow,
    Tag,
    Value,
    Voicemail,
)
from ivr.flow import Hangup as HangupNode
from ivr.lookup_map import map_result
from ivr.record import CallRecord, InputRecord, InputResult, LookupRecord, Outcome, Tags
from ivr.template import render
from ivr.terminal import leave

log = structlog.get_logger("ivr")

DEFAULT_PROMPT_SECONDS = 30.0  # guard for a prompt whose length is unknown
PROMPT_GUARD_MARGIN = 5.0  # a PromptFinished later than length + margin is presumed lost
LOOKUP_GRACE = 1.0  # the runner enforces the look-up timeout; this is the core's back-stop
RECORD_GRACE = 15.0  # the channel ends a voicemail by max_seconds (plus answer and beep); the core's back-stop
STOP_KEY = "#"  # ends a voicemail recording
MAX_STEPS = 10_000  # back-stop for flows built in code without the validator


TYPEAHEAD_MAX = 16  # keys kept for the next menu or collect


class SessionState(Enum):
    IDLE = "idle"
    PLAYING = "playing"  # non-interruptible prompt
    PROMPTING = "prompting"  # menu/collect prompt, a digit barges in
    WAITING_INPUT = "waiting_input"
    LOOKING_UP = "looking_up"
    RECORDING = "recording"  # a voicemail is being recorded
    FINISHED = "finished"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Frame:
    flow: Flow
    return_to: NodeId | None  # node of the calling flow to continue at after ``return``


class Session:
    """Runs one flow for one call."""

    def __init__(self, flows: FlowSet, flow: str, *, caller: str, called: str = "") -> None:
        if flow not in flows.flows:
            raise UnknownFlowError(f"unknown flow {flow!r}")
        self.flows = flows
        self.flow_name = FlowName(flow)
        self.state = SessionState.IDLE
        self.outcome: Outcome | None = None
        self.variables: dict[str, Value] = {"caller": caller, "called": called}
        self._stack: list[_Frame] = [_Frame(flow=flows.flows[FlowName(flow)], return_to=None)]
        self._node: NodeId = self._stack[0].flow.start
        self._visits: dict[tuple[FlowName, NodeId], int] = {}
        self._attempt = 0
        self._digits = ""
        self._typeahead: list[str] = []  # keys pressed while no menu listened: for the next menu/collect
        self._deadline: float | None = None
        self._lookup_id = LookupId(0)
        self._lookup_url = ""
        self._inputs: list[InputRecord] = []
        self._lookups: list[LookupRecord] = []
        self._tags = Tags()
        self._path: list[tuple[FlowName, NodeId]] = []
        self._started_at: float | None = None
        self._ended_at: float | None = None

    # -- public API ---------------------------------------------------------------------------

    def start(self, now: float) -> list[Command]:
        """Enter the start node.

        Raises:
            LocalIvrError: the session was already started.
        """
        if self._started_at is not None:
            raise LocalIvrError("session already started")
        self._started_at = now
        out: list[Command] = []
        self._run(self._node, now, out)
        return out

    def handle(self, event: IvrEvent, now: float) -> list[Command]:
        """Feed one event; events that do not fit the current state are ignored."""
        out: list[Command] = []
        if self.state is SessionState.FINISHED:
            return out
        match event:
            case PromptFinished():
                if self.state in (SessionState.PLAYING, SessionState.PROMPTING):
                    self._prompt_done(now, out)
            case DigitReceived(digit=digit):
                self._digit(digit, now, out)
            case LookupCompleted() | LookupFailed():
                if self.state is SessionState.LOOKING_UP and event.lookup_id == self._lookup_id:
                    self._lookup_done(event, now, out)
            case VoicemailRecorded():
                if self.state is SessionState.RECORDING:
                    self._recorded(now, out)
            case CallerHungUp():
                # A caller who hangs up while recording has left a message (the channel keeps it).
                recording = self.state is SessionState.RECORDING
                self._finish(Outcome.VOICEMAIL if recording else Outcome.CALLER_HUNG_UP, now)
            case _:
                raise LocalIvrError(f"not an IVR event: {event!r}")
        return out

    def get_timer(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or None."""
        return self._deadline

    def handle_timer(self, now: float) -> list[Command]:
        """Act on an expired timer (early calls are harmless no-ops)."""
        out: list[Command] = []
        if self._deadline is None or now < self._deadline or self.state is SessionState.FINISHED:
            return out
        self._deadline = None
        if self.state in (SessionState.PLAYING, SessionState.PROMPTING):
            log.warning("ivr.prompt.timed_out", node=self._node)
            self._prompt_done(now, out)
        elif self.state is SessionState.WAITING_INPUT:
            node = self._current()
            if isinstance(node, Collect) and self._digits:
                self._collect_done(node, now, out)
            else:
                self._reject(InputResult.NO_INPUT, now, out)
        elif self.state is SessionState.LOOKING_UP:
            self._lookup_done(LookupFailed(lookup_id=self._lookup_id, reason="timeout"), now, out)
        elif self.state is SessionState.RECORDING:
            log.warning("ivr.voicemail.timed_out", node=self._node)
            out.append(StopVoicemail())
            self._recorded(now, out)
        return out

    @property
    def finished(self) -> bool:
        return self.state is SessionState.FINISHED

    @property
    def record(self) -> CallRecord:
        """A snapshot of everything kept about the call (screen pop, CDR)."""
        return CallRecord(
            caller=str(self.variables["caller"]),
            called=str(self.variables["called"]),
            flow=self.flow_name,
            flow_version=self.flows.version,
            variables=dict(self.variables),
            inputs=tuple(self._inputs),
            lookups=tuple(self._lookups),
            tags=self._tags,
            path=tuple(self._path),
            outcome=self.outcome,
            started_at=self._started_at,
            ended_at=self._ended_at,
        )

    # -- internals ----------------------------------------------------------------------------

    def _set_state(self, state: SessionState, deadline: float | None) -> None:
        if state is not self.state:
            log.debug("ivr.session.state_changed", old=self.state.value, new=state.value, node=self._node)
        self.state = state
        self._deadline = deadline

    def _flow(self) -> Flow:
        return self._stack[-1].flow

    def _current(self) -> object:
        return self._flow().nodes[self._node]

    def _play(self, prompts: tuple[PromptName, ...], barge_in: bool, now: float, out: list[Command]) -> None:
        seconds = sum(self.flows.prompt_seconds.get(p, DEFAULT_PROMPT_SECONDS) for p in prompts)
        out.append(PlayPrompt(prompts=prompts, barge_in=barge_in))
        state = SessionState.PROMPTING if barge_in else SessionState.PLAYING
        self._set_state(state, now + seconds + PROMPT_GUARD_MARGIN)

    def _drain_typeahead(self, now: float, out: list[Command]) -> None:
        """Give the keys pressed ahead to the menu or collect that just started, in order."""
        node = self._node
        while self._typeahead and self._node == node and self.state in (
                SessionState.PROMPTING, SessionState.WAITING_INPUT):
            self._digit(self._typeahead.pop(0), now, out)

    def _finish(self, outcome: Outcome, now: float) -> None:
        self.outcome = outcome
        self._ended_at = now
        self._set_state(SessionState.FINISHED, None)
        log.info("ivr.session.finished", outcome=outcome.value, flow=self.flow_name, node=self._node)

    def _run(self, target: NodeId, now: float, out: list[Command]) -> None:
        """Follow automatic nodes from ``target`` until one waits or the call leaves the IVR."""
        nxt: NodeId | None = target
        while nxt is not None:
            if len(self._path) >= MAX_STEPS:
                out.append(Hangup(reason=HangupReason.STEP_LIMIT))
                self._finish(Outcome.HUNG_UP, now)
                return
            self._node = nxt
            self._path.append((self._flow().name, nxt))
            log.debug("ivr.node.entered", flow=self._flow().name, node=nxt)
            nxt = self._step(now, out)

    def _step(self, now: float, out: list[Command]) -> NodeId | None:
        """Execute the current node; return the next node to enter at once, or None to wait."""
        node = self._flow().nodes[self._node]
        match node:
            case Play():
                self._play(node.prompts, False, now, out)
            case Menu() | Collect():
                key = (self._flow().name, node.id)
                if self._visits.get(key, 0) >= node.max_visits:
                    return node.on_failure
                self._visits[key] = self._visits.get(key, 0) + 1
                self._attempt = 0
                self._digits = ""
                self._play(node.prompts, True, now, out)
                self._drain_typeahead(now, out)
            case SetVars():
                for name, value in node.values.items():
                    self.variables[name] = render(value, self.variables) if isinstance(value, str) else value
                return node.next
            case Branch():
                for case in node.cases:
                    if evaluate(case.when, self.variables, self.flows, now):
                        return case.goto
                return node.default
            case Lookup():
                self._lookup_id = LookupId(self._lookup_id + 1)
                self._lookup_url = render(node.url, self.variables, url=True)
                params = {k: render(v, self.variables) for k, v in node.params.items()}
                out.append(StartLookup(lookup_id=self._lookup_id, url=self._lookup_url, params=params,
                                       timeout=node.timeout))
                self._set_state(SessionState.LOOKING_UP, now + node.timeout + LOOKUP_GRACE)
            case Tag():
                self._tag(node, out)
                return node.next
            case SubFlow():
                self._stack.append(_Frame(flow=self.flows.flows[node.flow], return_to=node.next))
                return self._flow().start
            case Return():
                frame = self._stack.pop() if len(self._stack) > 1 else None
                if frame is not None and frame.return_to is not None:
                    return frame.return_to
                out.append(Hangup(reason=HangupReason.FLOW_ENDED))
                self._finish(Outcome.HUNG_UP, now)
            case Voicemail():
                if node.prompts:
                    self._play(node.prompts, False, now, out)
                else:
                    self._record(node, now, out)
            case Queue() | HangupNode():
                if node.prompts:
                    self._play(node.prompts, False, now, out)
                else:
                    self._leave(now, out)
        return None

    def _tag(self, node: Tag, out: list[Command]) -> None:
        old = self._tags
        self._tags = Tags(
            vip=old.vip or node.vip,
            priority=max(old.priority, node.priority or 0),
            reason=node.reason if node.reason is not None else old.reason,
            skills={**old.skills, **node.skills},
        )
        t = self._tags
        out.append(TagCall(vip=t.vip, priority=t.priority, reason=t.reason, skills=t.skills))
        if node.alert is not None:
            message = render(node.alert, self.variables)
            out.append(RaiseAlert(kind="vip" if node.vip else "ivr", message=message,
                                  caller=str(self.variables["caller"])))

    def _leave(self, now: float, out: list[Command]) -> None:
        """Execute a terminal node: the call leaves the IVR."""
        node = self._current()
        assert isinstance(node, Queue | HangupNode)
        commands, outcome = leave(node, self._tags, self.variables)
        out.extend(commands)
        self._finish(outcome, now)

    def _prompt_done(self, now: float, out: list[Command]) -> None:
        node = self._current()
        if isinstance(node, Play):
            self._set_state(SessionState.IDLE, None)
            self._run(node.next, now, out)
        elif isinstance(node, Menu | Collect):
            self._set_state(SessionState.WAITING_INPUT, now + node.timeout)
        elif isinstance(node, Voicemail):
            self._record(node, now, out)
        else:
            self._leave(now, out)

    def _record(self, node: Voicemail, now: float, out: list[Command]) -> None:
        """Start recording the caller's message (after the node's prompts)."""
        out.append(RecordVoicemail(mailbox=node.mailbox, max_seconds=node.max_seconds,
                                   silence_seconds=node.silence_seconds, beep=node.beep))
        self._typeahead.clear()  # keys pressed during the prompt are not a stop key
        self._set_state(SessionState.RECORDING, now + node.max_seconds + RECORD_GRACE)

    def _recorded(self, now: float, out: list[Command]) -> None:
        """The message is kept: go on at ``next``, or hang up."""
        node = self._current()
        assert isinstance(node, Voicemail)
        self._set_state(SessionState.IDLE, None)
        if node.next is not None:
            self._run(node.next, now, out)
            return
        out.append(Hangup(reason=HangupReason.FLOW_ENDED))
        self._finish(Outcome.VOICEMAIL, now)

    def _digit(self, digit: str, now: float, out: list[Command]) -> None:
        if self.state is SessionState.RECORDING:
            if digit == STOP_KEY:
                out.append(StopVoicemail())  # VoicemailRecorded follows once the message is kept
            return
        if self.state is SessionState.PROMPTING:
            out.append(StopPrompt())
        elif self.state in (SessionState.PLAYING, SessionState.LOOKING_UP, SessionState.IDLE):
            # Type-ahead: a caller who knows the menu presses during the greeting; the next menu or
            # collect hears it (bounded, so a stuck key cannot pile up).
            if len(self._typeahead) < TYPEAHEAD_MAX:
                self._typeahead.append(digit)
            return
        elif self.state is not SessionState.WAITING_INPUT:
            return
        node = self._current()
        if isinstance(node, Menu):
            target = node.options.get(digit)
            if target is None:
                self._digits = digit
                self._reject(InputResult.INVALID, now, out)
                return
            self._remember(digit, InputResult.ACCEPTED, now, out)
            if node.store is not None:
                self.variables[node.store] = digit
            self._set_state(SessionState.IDLE, None)
            self._run(target, now, out)
        elif isinstance(node, Collect):
            if digit == node.terminator:
                self._collect_done(node, now, out)
                return
            self._digits += digit
            if len(self._digits) >= node.max_length:
                self._collect_done(node, now, out)
            else:
                self._set_state(SessionState.WAITING_INPUT, now + node.inter_digit_timeout)

    def _collect_done(self, node: Collect, now: float, out: list[Command]) -> None:
        digits = self._digits
        if len(digits) < node.min_length or (node.pattern is not None and not node.pattern.fullmatch(digits)):
            self._reject(InputResult.INVALID, now, out)
            return
        self._remember(digits, InputResult.ACCEPTED, now, out)
        self.variables[node.variable] = digits
        self._set_state(SessionState.IDLE, None)
        self._run(node.next, now, out)

    def _remember(self, digits: str, result: InputResult, now: float, out: list[Command]) -> None:
        record = InputRecord(flow=self._flow().name, node=self._node, digits=digits, result=result, at=now)
        self._inputs.append(record)
        out.append(InputTaken(record=record))

    def _reject(self, result: InputResult, now: float, out: list[Command]) -> None:
        """Invalid or no input: replay with the matching prompts, or leave by on_failure after the retries."""
        node = self._current()
        assert isinstance(node, Menu | Collect)
        self._remember(self._digits if result is InputResult.INVALID else "", result, now, out)
        self._digits = ""
        self._attempt += 1
        if self._attempt > node.retries:
            self._set_state(SessionState.IDLE, None)
            self._run(node.on_failure, now, out)
            return
        extra = node.invalid_prompts if result is InputResult.INVALID else node.no_input_prompts
        self._play((*extra, *node.prompts), True, now, out)

    def _lookup_done(self, event: LookupCompleted | LookupFailed, now: float, out: list[Command]) -> None:
        node = self._current()
        assert isinstance(node, Lookup)
        self._set_state(SessionState.IDLE, None)
        flow, url = self._flow().name, self._lookup_url
        if isinstance(event, LookupCompleted):
            values, error = map_result(node.result, event.result)
            if error is None:
                self.variables.update(values)
                self._lookups.append(LookupRecord(flow=flow, node=node.id, url=url, ok=True, at=now,
                                                  result=dict(event.result)))
                self._run(node.next, now, out)
                return
            reason = error
        else:
            reason = event.reason
        log.info("ivr.lookup.failed", node=node.id, reason=reason)
        self._lookups.append(LookupRecord(flow=flow, node=node.id, url=url, ok=False, at=now, reason=reason))
        self._run(node.on_error, now, out)
