"""The durable side of the call path: CDRs, queue legs (domain.md §0), agent-state history, recordings,
and the webhook outbox rows of the events they cause (docs/reliability.md).

:class:`CallRecords` turns call milestones and ACD events into store rows and writes them in order
through one writer task; whatever queued up meanwhile goes in one transaction (one commit, one
``Store.run_batch``: on SQLite a single hand-over to the driver's thread), and a batch that fails
is retried job by job so one bad row never loses the others. Rows are built on the event loop;
the jobs only hand them to the store.

A call's CDR row exists from its arrival and is rewritten at each milestone (answered, queued,
agent answered, ended). Events bound for webhooks (:data:`DURABLE_EVENTS`) are written to the outbox
by this writer, in the same transaction as the record change that caused them: the ending CDR and
its ``call.ended`` are one job. ``call_ended`` returns a future that resolves once that
transaction is committed, so the caller can answer the BYE only then. Times are wall-clock UTC
seconds from the node's one clock (cti/clock.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import json
import operator
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from acd import (
    AcdError,
    AgentId,
    AgentState,
    AgentStateChanged,
    CallAbandoned,
    CallAnswered,
    CallEnded,
    CallExited,
    CallId,
    CallOffered,
    CallQueued,
    ExitReason,
    QueueId,
)
from cti.call.detail import CallDetail
from cti.events.registry import Envelope
from cti.store import CallRecord as CdrRecord
from cti.store import HangupParty, InvalidRecordError, LegId, LegOutcome, Party, PartyRole, QueueLeg
from cti.store import Recording as RecordingRow
from cti.voicemail import VoicemailMessage, insert_job

if TYPE_CHECKING:
    from cti.store import Store, StoreOperations

log = structlog.get_logger(__name__)

WRITE_BATCH = 2000
# How long the writer lets jobs gather after the first one: a commit (an fsync) per 50 ms at most
# instead of one per call event. A row reaches the disk at most this much later.
WRITE_LINGER_S = 0.05
# ... but once someone waits for a commit (the 200 to a BYE, or to the trunk's INVITE: cdr_committed),
# the batch goes this long after that at most: a caller waits ~5 ms + a commit, not up to 50 ms.
WAITED_LINGER_S = 0.005
Job = Callable[["StoreOperations"], Awaitable[Any]]
_Key = tuple[str, str]  # ("leg", leg id) or ("cdr", call id): a row whose newest version waits in _unwritten
_NUMBER = re.compile(r"\+?[0-9]{1,32}")

# Events a CRM must never miss: written to the outbox by the record writer, in the transaction of the
# record change that caused them (the webhook dispatcher's own bus recorder skips them).
DURABLE_EVENTS = ("call.", "agent.state_changed", "voicemail.")


def is_durable(event_type: str) -> bool:
    """True when ``event_type`` enters the outbox with its record (see :data:`DURABLE_EVENTS`)."""
    return event_type.startswith(DURABLE_EVENTS)


class OutboxTargets(Protocol):
    """Who gets an event by webhook (the dispatcher), and how to tell them it is committed."""

    def targets(self, event_type: str) -> list[str]: ...
    def committed(self, rows: Mapping[str, int]) -> None: ...


@dataclass(slots=True)
class _Waited:
    """A job whose callers wait for its commit (more may join until it is committed); ``key``: the row's."""

    job: Job
    done: list[asyncio.Future[None]]
    key: _Key | None = None


def is_number(text: str) -> bool:
    """A normalised caller number (``+`` and digits), as the store requires; else it is not stored."""
    return bool(_NUMBER.fullmatch(text))


class CallRecords:
    """Store rows for one node's calls. ``details`` looks up a live call's detail by id."""

    def __init__(self, store: Store | None, node: str, details: Callable[[CallId], CallDetail | None], *,
                 clock: Callable[[], float] = time.time, site: str | None = None) -> None:
        self.store = store
        self.node = node
        self.site = site  # ``node.site``: the site code of recording serials (allocate_serial)
        self._details = details
        self._clock = clock
        self.outbox: OutboxTargets | None = None  # set by the server when webhooks are configured
        # Jobs, or the key of a row whose newest version is in _unwritten. A job runs in the store's
        # driver thread (Store.run_batch): it may only await the tx and read values it captured.
        self._writes: asyncio.Queue[Job | _Waited | _Key] = asyncio.Queue()
        self.last_commit_ok = True  # False while writes fail (the health check reads it)
        self.failing_since: float | None = None
        self._open: dict[CallId, QueueLeg] = {}  # the queue leg each waiting/talking call is on
        self._visits: dict[CallId, int] = {}  # queue legs per call so far: leg ids stay unique
        self._awaiting_acw: dict[AgentId, QueueLeg] = {}  # ended legs whose agent is in wrap-up
        self._outbox_rows_queued: Counter[str] = Counter()  # outbox rows per endpoint since the last commit
        # The newest row of each leg / CDR not yet written; a CDR milestone as its call's detail, read into the row
        # when the writer takes it (on the event loop): milestones that follow one another within a batch build one.
        self._unwritten: dict[_Key, Job | CallDetail] = {}
        self._waiters: dict[_Key, list[asyncio.Future[None]]] = {}  # waiting for the newest row of a key
        self._committing: dict[_Key, _Waited] = {}  # rows taken by the batch being written, not committed yet
        self._hurry = asyncio.Event()  # set when a caller waits for a commit: the linger is cut short

    # ------------------------------------------------------------------------------ writer

    def write(self, job: Job) -> None:
        if self.store is not None:
            self._writes.put_nowait(job)

    def write_waited(self, job: Job) -> asyncio.Future[None]:
        """Queue ``job``; the future resolves once its transaction is committed (or fails with its error)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.store is None:
            done.set_result(None)
        else:
            self._writes.put_nowait(_Waited(job, [done]))
            self._hurry.set()
        return done

    async def run(self) -> None:
        """The writer task: runs until cancelled."""
        if self.store is None:
            await asyncio.Event().wait()
        assert self.store is not None
        while True:
            batch = [self._job(await self._writes.get())]
            await self._linger()  # group commit: what comes meanwhile joins this batch
            while len(batch) < WRITE_BATCH and not self._writes.empty():
                batch.append(self._job(self._writes.get_nowait()))
            outbox_rows = self._take_outbox_counts()
            try:
                await self._commit(batch, outbox_rows)
            finally:
                for item in batch:
                    self._writes.task_done()
                    if isinstance(item, _Waited) and item.key is not None:
                        self._committing.pop(item.key, None)

    async def _linger(self) -> None:
        """Wait WRITE_LINGER_S, or WAITED_LINGER_S once a caller waits for a commit."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WRITE_LINGER_S
        try:
            async with asyncio.timeout_at(deadline):
                await self._hurry.wait()
                await asyncio.sleep(WAITED_LINGER_S)
        except TimeoutError:
            pass
        self._hurry.clear()

    async def _commit(self, batch: list[Job | _Waited], outbox_rows: Mapping[str, int]) -> None:
        assert self.store is not None
        jobs = [item.job if isinstance(item, _Waited) else item for item in batch]
        try:
            await self.store.run_batch(functools.partial(_run_all, jobs))
        except Exception as exc:
            log.warning("store.batch.failed", jobs=len(jobs), error=repr(exc))
            ok = False
            for item in batch:
                try:
                    await self.store.run_batch(item.job if isinstance(item, _Waited) else item)
                    ok = True
                    _settle(item, None)
                except Exception as one:  # logged; the next ones go on
                    log.error("store.write.failed", error=repr(one))
                    _settle(item, one)
            self._health(ok)
            if ok:
                self._outbox_committed(outbox_rows)
            return
        for item in batch:
            _settle(item, None)
        self._health(True)
        self._outbox_committed(outbox_rows)

    def _take_outbox_counts(self) -> dict[str, int]:
        """Outbox rows per endpoint queued so far (all of them in the batch being taken)."""
        counts = dict(self._outbox_rows_queued)
        self._outbox_rows_queued.clear()
        return counts

    def _outbox_committed(self, rows: Mapping[str, int]) -> None:
        if self.outbox is not None and rows:
            self.outbox.committed(rows)

    def _health(self, ok: bool) -> None:
        self.last_commit_ok = ok
        if ok:
            self.failing_since = None
        elif self.failing_since is None:
            self.failing_since = time.monotonic()

    async def flush(self, limit_s: float = 10.0) -> None:
        """Wait until everything queued so far is written."""
        async with asyncio.timeout(limit_s):
            await self._writes.join()

    # ------------------------------------------------------------------------------ rows from events

    def on_acd_event(self, event: object, wall: float) -> None:
        """Keep the queue legs and agent-state history up to date with one ACD event."""
        match event:
            case AgentStateChanged():
                self.write(lambda tx: tx.record_agent_state(event.agent_id, event.state, wall, event.reason))
                # CallEnded comes just before the move into wrap-up: the leg waits for the agent to leave it.
                if event.state is not AgentState.WRAP_UP:
                    pending = self._awaiting_acw.pop(event.agent_id, None)
                    if pending is not None and event.previous is AgentState.WRAP_UP and pending.t_end is not None:
                        self._save(_leg_with(pending, acw_s=max(0.0, wall - pending.t_end)))
            case CallQueued():
                row = self._new_leg(event.call_id, event.queue_id, wall, event.priority)
                self._open[event.call_id] = row
                self._save(row)
            case CallOffered():
                self._update(event.call_id, lambda r: _leg_with(r, offers=r.offers + 1))
            case CallAnswered():
                self._update(event.call_id, lambda r: _leg_with(r, outcome=LegOutcome.ANSWERED, t_answer=wall,
                                                              agent_id=event.agent_id))
            case CallAbandoned():
                self._update(event.call_id, lambda r: _leg_with(r, outcome=LegOutcome.ABANDONED, t_abandon=wall),
                             final=True)
            case CallExited() if event.call_id not in self._open:
                # Refused at the door (queue full): never queued, but offered to the queue and a flow-out
                # (domain.md §1.1), as the live statistics count it.
                self._open[event.call_id] = self._new_leg(event.call_id, event.queue_id, wall, 0)
                self._update(event.call_id, lambda r: _leg_with(r, outcome=LegOutcome.FLOWOUT, t_flowout=wall,
                                                              flowout_reason=event.reason), final=True)
            case CallExited():
                self._update(event.call_id, lambda r: _leg_with(r, outcome=LegOutcome.FLOWOUT, t_flowout=wall,
                                                              flowout_reason=event.reason), final=True)
            case CallEnded():
                ended = self._update(event.call_id, lambda r: _leg_with(r, t_end=wall, talk_s=event.talk_s,
                                                                      hold_s=event.hold_s), final=True)
                if ended is not None:
                    self._awaiting_acw[event.agent_id] = ended
            case _:
                pass

    def _new_leg(self, call_id: CallId, queue_id: QueueId, wall: float, priority: int) -> QueueLeg:
        detail = self._details(call_id)
        visit = self._visits.get(call_id, 0)
        self._visits[call_id] = visit + 1
        return QueueLeg(
            leg_id=LegId(f"{call_id}-{visit}"), call_id=call_id, queue_id=queue_id,
            t_enter_queue=wall, priority=priority, vip_flag=bool(detail and detail.vip),
            caller_number=detail.caller if detail and is_number(detail.caller) else None,
            call_reason=detail.reason if detail else None,
        )

    def _update(self, call_id: CallId, change: Callable[[QueueLeg], QueueLeg], *,
                final: bool = False) -> QueueLeg | None:
        current = self._open.get(call_id)
        if current is None:
            return None
        row = change(current)
        detail = self._details(call_id)
        if detail is not None and detail.recording_serial and row.recording_serial is None:
            row = _leg_with(row, recording_serial=detail.recording_serial)
        if final:
            del self._open[call_id]
        else:
            self._open[call_id] = row
        self._save(row)
        return row

    def _save(self, row: QueueLeg) -> None:
        """Save the leg's row. Rows of a leg still waiting in the queue replace each other (the
        store keeps only the last one: an upsert), so a busy node writes each leg about once."""
        self._coalesce(("leg", row.leg_id), lambda tx: tx.save_queue_leg(row))

    def _coalesce(self, key: _Key, job: Job | CallDetail) -> None:
        if self.store is None:
            return
        waiting = key in self._unwritten
        self._unwritten[key] = job
        if not waiting:
            self._writes.put_nowait(key)

    def _job(self, item: Job | _Waited | _Key) -> Job | _Waited:
        """The job for a queue item; a row's newest version is taken now, on the event loop."""
        if isinstance(item, tuple):
            job = self._unwritten.pop(item, _nothing)
            if isinstance(job, CallDetail):  # a CDR milestone: the row as the call stands now
                job = self._milestone_job(CallId(item[1]), job)
            if item[0] != "cdr":
                return job
            waited = _Waited(job, self._waiters.pop(item, []), item)
            self._committing[item] = waited  # cdr_committed now waits for this batch
            return waited
        return item

    def _milestone_job(self, call_id: CallId, detail: CallDetail) -> Job:
        try:
            record, _ = self._cdr_rows(call_id, detail, final=False)
        except Exception as exc:  # a detail no row can be made of (a bug): the writer goes on, the final row may yet be
            log.error("store.record.unbuilt", call_id=call_id, error=repr(exc), exc_info=exc)
            return _nothing
        return functools.partial(_save_call, record)

    # ------------------------------------------------------------------------------ the outbox

    def event(self, envelope: Envelope) -> None:
        """A durable event (see :data:`DURABLE_EVENTS`): into the outbox with the records queued before it."""
        rows = self._outbox_rows(envelope)
        if rows:
            self.write(functools.partial(_enqueue_all, rows))

    def _outbox_rows(self, envelope: Envelope) -> list[tuple[str, str, str, dict[str, Any], float]]:
        if self.outbox is None or not is_durable(envelope.type):
            return []
        targets = self.outbox.targets(envelope.type)
        if not targets:  # no endpoint takes it (a node without webhooks has none)
            return []
        self._outbox_rows_queued.update(targets)
        payload, now = envelope.to_dict(), self._clock()
        return [(name, envelope.id, envelope.type, payload, now) for name in targets]

    # ------------------------------------------------------------------------------ the CDR

    def milestone(self, call_id: CallId, detail: CallDetail) -> None:
        """The CDR as it stands (arrival, IVR answer, queue entry, agent answer): an upsert, coalesced
        with the call's other unwritten milestones. The row is read from ``detail`` when the writer takes
        it, so it holds the call as it stands then (never less than at this milestone)."""
        self._coalesce(("cdr", call_id), detail)

    def cdr_committed(self, call_id: CallId) -> asyncio.Future[None]:
        """A future that resolves once the call's CDR, as queued so far, is committed (at once when
        nothing of it waits). The trunk's 200 can wait on it, so that a call the carrier saw answered
        always has its row: a crash then closes it ``interrupted`` instead of losing it. It fails
        with the write's error when the write fails."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        key: _Key = ("cdr", call_id)
        if key in self._unwritten:  # the newest version still waits in the queue
            self._waiters.setdefault(key, []).append(done)
            self._hurry.set()
        elif key in self._committing:  # taken by the batch being written
            self._committing[key].done.append(done)
            self._hurry.set()
        else:
            done.set_result(None)
        return done

    async def allocate_serial(self) -> str:
        """The next recording serial of this node's site, on today's date (UTC, from the node's clock).

        Raises:
            AcdError: no store (or no site) to allocate from. StoreError: the store failed.
        """
        if self.store is None or self.site is None:
            raise AcdError("no store to allocate a recording serial from")
        day = dt.datetime.fromtimestamp(self._clock(), dt.UTC).date()
        return str(await self.store.allocate_serial(self.site, day))

    def keep_voicemail(self, message: VoicemailMessage) -> asyncio.Future[None]:
        """Queue a voicemail message's row; the future resolves once it is committed
        (``voicemail.left`` follows it: :func:`cti.call.ivrchannel.keep_message`)."""
        return self.write_waited(insert_job(message))

    def call_ended(self, call_id: CallId, detail: CallDetail,
                   events: Sequence[Envelope] = ()) -> asyncio.Future[None]:
        """Write (or rewrite, after a wrap-up disposition) the final CDR, the recording's index entry
        and the outbox rows of ``events``, in one transaction. The future resolves when it is committed
        (so do those of :meth:`cdr_committed` still waiting for an earlier version of the row)."""
        self._visits.pop(call_id, None)
        self._unwritten.pop(("cdr", call_id), None)  # this row supersedes any unwritten milestone
        earlier = self._waiters.pop(("cdr", call_id), [])
        record, recording = self._cdr_rows(call_id, detail, final=True)  # now: the detail lives on
        outbox = [row for envelope in events for row in self._outbox_rows(envelope)]

        async def save(tx: StoreOperations) -> None:
            await tx.save_call(record)
            if recording is not None:
                await tx.save_recording(recording)
            await _enqueue_all(outbox, tx)

        done = self.write_waited(save)
        for waiter in earlier:
            done.add_done_callback(functools.partial(_follow, waiter))
        return done

    def _cdr_rows(self, call_id: CallId, d: CallDetail, *, final: bool) -> tuple[CdrRecord, RecordingRow | None]:
        fields: dict[str, Any] = dict(
            call_id=call_id, node=self.node, t_arrived=d.arrived_at, sip_call_id=d.sip_call_id,
            trunk=d.trunk, caller_number=d.caller if is_number(d.caller) else None, caller_name=d.caller_name or None,
            dialled_number=d.dialled, t_ivr_answered=d.answered_at, t_ivr_left=d.queued_at, t_queued=d.queued_at,
            t_answered=d.agent_answered_at, t_ended=(d.ended_at or self._clock()) if final else None,
            hangup_by=HangupParty(d.hung_up_by) if d.hung_up_by in ("caller", "agent", "system") else None,
            end_reason=d.end_reason if final else None, disposition=d.disposition, wrap_up_notes=d.wrap_up_notes,
            ivr_inputs={"inputs": _jsonable(d.ivr_inputs), "variables": _jsonable(d.ivr_variables)},
            crm_data={"lookups": _jsonable(d.crm)}, vip=d.vip, call_reason=d.reason,
            recording_serial=d.recording_serial,
            final_agent=AgentId(d.agent) if d.agent else None, final_queue=QueueId(d.queue) if d.queue else None,
        )
        record = checked_call_record(fields)
        if not (final and d.recording_serial and d.recording_path and d.agent_answered_at):
            return record, None
        ended = record.t_ended or self._clock()
        try:
            recording = RecordingRow(
                serial=d.recording_serial, call_id=call_id, path=d.recording_path,  # type: ignore[arg-type]
                started=d.agent_answered_at, ended=ended, duration_s=max(0.0, ended - d.agent_answered_at),
                parties=(Party(role=PartyRole.CALLER, identity=d.caller or "anonymous"),
                         Party(role=PartyRole.AGENT, identity=d.agent or "")),
                queue_id=QueueId(d.queue) if d.queue else None, agent_id=AgentId(d.agent) if d.agent else None,
            )
        except InvalidRecordError as exc:
            log.error("store.record.invalid", kind="recording", call_id=call_id, error=str(exc))
            return record, None
        return record, recording

    # ------------------------------------------------------------------------------ after a crash

    async def close_interrupted(self, ended_event: Callable[[CdrRecord], Envelope]) -> list[Envelope]:
        """Close the calls a crash left open (CDR without an end): ``end_reason`` and, when the agent
        gave none, ``disposition`` become ``interrupted``; the end time is the call's last milestone
        (nothing later is known). Their open queue legs end at that time too, and the ``call.ended``
        event of each (built by ``ended_event``) enters the outbox in the same transaction.
        Returns those events, for the caller to publish once committed.

        Raises:
            StoreError: the store could not be read or written (the node must not start half-recovered).
        """
        if self.store is None:
            return []
        open_calls = await self.store.open_calls(self.node)
        events: list[Envelope] = []
        legs_by_call = {call.call_id: await self.store.legs_of_call(call.call_id) for call in open_calls}
        closed: list[tuple[CdrRecord, list[QueueLeg]]] = []
        for call in open_calls:
            bound = max(t for t in (call.t_arrived, call.t_ivr_answered, call.t_ivr_left, call.t_queued,
                                    call.t_answered) if t is not None)
            ended = replace(call, t_ended=bound, hangup_by=HangupParty.SYSTEM, end_reason="interrupted",
                            disposition=call.disposition or "interrupted")
            legs = [_close_leg(leg, bound) for leg in legs_by_call[call.call_id] if leg.t_end is None
                    and leg.outcome in (LegOutcome.IN_QUEUE, LegOutcome.ANSWERED)]
            closed.append((ended, legs))
            events.append(ended_event(ended))
        if not closed:
            return []
        outbox = [row for envelope in events for row in self._outbox_rows(envelope)]

        async def save(tx: StoreOperations) -> None:
            for record, legs in closed:
                await tx.save_call(record)
                for leg in legs:
                    await tx.save_queue_leg(leg)
            await _enqueue_all(outbox, tx)

        await self.store.run_batch(save)
        self._outbox_committed(self._take_outbox_counts())
        log.warning("store.calls.interrupted", calls=len(closed), call_ids=[r.call_id for r, _ in closed][:20])
        return events


_LEG_FIELDS = tuple(f.name for f in fields(QueueLeg))
_leg_values = operator.attrgetter(*_LEG_FIELDS)


def _leg_with(row: QueueLeg, **changes: Any) -> QueueLeg:
    """``dataclasses.replace`` for a queue leg (checked the same way), without its generic walk over the fields:
    a leg changes at each ACD event of its call."""
    values = dict(zip(_LEG_FIELDS, _leg_values(row), strict=True))
    values.update(changes)
    return QueueLeg(**values)


def _close_leg(leg: QueueLeg, at: float) -> QueueLeg:
    at = max(at, leg.t_enter_queue, leg.t_answer or 0.0)
    if leg.outcome is LegOutcome.ANSWERED:
        return replace(leg, t_end=at, talk_s=max(0.0, at - (leg.t_answer or at)))
    return replace(leg, outcome=LegOutcome.FLOWOUT, t_flowout=at, flowout_reason=ExitReason.INTERRUPTED)


_MILESTONES = ("t_ivr_answered", "t_ivr_left", "t_queued", "t_answered")


def checked_call_record(fields: dict[str, Any]) -> CdrRecord:
    """A CDR from ``fields``; one the store would refuse is repaired and stored with ``problems``
    saying what was wrong, never raised into the call path (docs/reliability.md)."""
    try:
        return CdrRecord(**fields)
    except InvalidRecordError as exc:
        problem = str(exc)
    log.error("store.record.invalid", kind="call", call_id=fields.get("call_id"), error=problem)
    repaired = dict(fields, problems=problem[:500])
    arrived = repaired["t_arrived"]
    for name in _MILESTONES:
        if repaired[name] is not None:
            repaired[name] = max(repaired[name], arrived)
    if repaired["t_ivr_answered"] is not None and repaired["t_ivr_left"] is not None:
        repaired["t_ivr_left"] = max(repaired["t_ivr_left"], repaired["t_ivr_answered"])
    if repaired["t_ended"] is not None:
        repaired["t_ended"] = max([repaired["t_ended"], arrived,
                                   *(repaired[n] for n in _MILESTONES if repaired[n] is not None)])
    try:
        return CdrRecord(**repaired)
    except InvalidRecordError:
        repaired["recording_serial"] = None  # the last field whose content can be refused
        return CdrRecord(**repaired)


async def _save_call(record: CdrRecord, tx: StoreOperations) -> None:
    await tx.save_call(record)


async def _nothing(tx: StoreOperations) -> None:
    """The job of a key whose row was already taken by a later, superseding write."""


async def _enqueue_all(rows: Sequence[tuple[str, str, str, dict[str, Any], float]], tx: StoreOperations) -> None:
    for endpoint, event_id, event_type, payload, created in rows:
        await tx.enqueue(endpoint=endpoint, event_id=event_id, event_type=event_type, payload=payload,
                         created=created)


def _settle(item: Job | _Waited, error: BaseException | None) -> None:
    if not isinstance(item, _Waited):
        return
    for done in item.done:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)


def _follow(waiter: asyncio.Future[None], source: asyncio.Future[None]) -> None:
    """Settle ``waiter`` as ``source`` was settled."""
    if waiter.done():
        return
    if source.cancelled():
        waiter.cancel()
    elif (error := source.exception()) is not None:
        waiter.set_exception(error)
    else:
        waiter.set_result(None)


async def _run_all(batch: list[Job], tx: StoreOperations) -> None:
    """Every job of a batch, in order, on one transaction."""
    for job in batch:
        await job(tx)


def _jsonable(value: Any) -> Any:
    """A JSON-safe copy of ``value`` (what a JSON round trip gives: anything else as its ``str``)."""
    plain = _plain_copy(value, 0)
    if plain is not _NOT_PLAIN:
        return plain
    return json.loads(json.dumps(value, default=str))


_NOT_PLAIN: Any = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})


def _plain_copy(value: Any, depth: int) -> Any:
    """A copy of ``value`` made of new lists and dicts when it is already plain JSON (exact ``dict`` with ``str``
    keys, ``list``, ``str``, ``int``, ``float``, ``bool``, ``None``), equal to its JSON round trip; else
    :data:`_NOT_PLAIN` (the caller then takes the round trip). A call's IVR inputs, variables and CRM results
    are plain: this saves a ``json.dumps`` and a ``json.loads`` per column at each milestone."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if depth > 32:
        return _NOT_PLAIN
    if kind is list:
        out: list[Any] = []
        for item in value:
            copied = _plain_copy(item, depth + 1)
            if copied is _NOT_PLAIN:
                return _NOT_PLAIN
            out.append(copied)
        return out
    if kind is dict:
        mapping: dict[str, Any] = {}
        for key, item in value.items():
            if type(key) is not str:
                return _NOT_PLAIN
            copied = _plain_copy(item, depth + 1)
            if copied is _NOT_PLAIN:
                return _NOT_PLAIN
            mapping[key] = copied
        return mapping
    return _NOT_PLAIN
