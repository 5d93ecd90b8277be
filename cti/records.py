"""The durable side of the call path: CDRs, queue legs (domain.md §0), agent-state history, recordings.

:class:`CallRecords` turns ACD events and finished calls into store rows and writes them in order
through one writer task; whatever queued up meanwhile goes in one transaction (one commit, one
``Store.run_batch``: on SQLite a single hand-over to the driver's thread), and a batch that fails
is retried row by row so one bad row never loses the others. Rows are built on the event loop;
the jobs only hand them to the store. Times are wall-clock
UTC seconds (the caller converts the ACD's loop time).
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import structlog

from acd import (
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
    QueueId,
)
from cti.calldetail import CallDetail
from cti.store import CallRecord as CdrRecord
from cti.store import HangupParty, LegId, LegOutcome, Party, PartyRole, QueueLeg
from cti.store import Recording as RecordingRow

if TYPE_CHECKING:
    from cti.store import Store, StoreOperations

log = structlog.get_logger(__name__)

WRITE_BATCH = 500
# How long the writer lets jobs gather after the first one: a commit (an fsync) per 50 ms at most
# instead of one per call event. A row reaches the disk at most this much later.
WRITE_LINGER_S = 0.05
Job = Callable[["StoreOperations"], Awaitable[Any]]
_NUMBER = re.compile(r"\+?[0-9]{1,32}")


def is_number(text: str) -> bool:
    """A normalised caller number (``+`` and digits), as the store requires; else it is not stored."""
    return bool(_NUMBER.fullmatch(text))


class CallRecords:
    """Store rows for one node's calls. ``details`` looks up a live call's detail by id."""

    def __init__(self, store: Store | None, node: str, details: Callable[[CallId], CallDetail | None]) -> None:
        self.store = store
        self.node = node
        self._details = details
        # Jobs, or the id of a leg whose newest row is in _unwritten. A job runs in the store's
        # driver thread (Store.run_batch): it may only await the tx and read values it captured.
        self._writes: asyncio.Queue[Job | LegId] = asyncio.Queue()
        self._open: dict[CallId, QueueLeg] = {}  # the queue leg each waiting/talking call is on
        self._visits: dict[CallId, int] = {}  # queue legs per call so far: leg ids stay unique
        self._awaiting_acw: dict[AgentId, QueueLeg] = {}  # ended legs whose agent is in wrap-up
        self._unwritten: dict[LegId, QueueLeg] = {}  # the newest row of each leg not yet written

    # ------------------------------------------------------------------------------ writer

    def write(self, job: Job) -> None:
        if self.store is not None:
            self._writes.put_nowait(job)

    async def run(self) -> None:
        """The writer task: runs until cancelled."""
        if self.store is None:
            await asyncio.Event().wait()
        assert self.store is not None
        while True:
            batch = [self._job(await self._writes.get())]
            await asyncio.sleep(WRITE_LINGER_S)  # group commit: what comes meanwhile joins this batch
            while len(batch) < WRITE_BATCH and not self._writes.empty():
                batch.append(self._job(self._writes.get_nowait()))
            try:
                await self.store.run_batch(functools.partial(_run_all, batch))
            except Exception:
                for job in batch:
                    try:
                        await self.store.run_batch(job)
                    except Exception as exc:  # logged; the next ones go on
                        log.error("store.write.failed", error=repr(exc))
            finally:
                for _ in batch:
                    self._writes.task_done()

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
                pending = self._awaiting_acw.pop(event.agent_id, None)
                if pending is not None and event.previous is AgentState.WRAP_UP and pending.t_end is not None:
                    self._save(replace(pending, acw_s=max(0.0, wall - pending.t_end)))
            case CallQueued():
                detail = self._details(event.call_id)
                visit = self._visits.get(event.call_id, 0)
                self._visits[event.call_id] = visit + 1
                row = QueueLeg(
                    leg_id=LegId(f"{event.call_id}-{visit}"), call_id=event.call_id, queue_id=event.queue_id,
                    t_enter_queue=wall, priority=event.priority, vip_flag=bool(detail and detail.vip),
                    caller_number=detail.caller if detail and is_number(detail.caller) else None,
                    call_reason=detail.reason if detail else None,
                )
                self._open[event.call_id] = row
                self._save(row)
            case CallOffered():
                self._update(event.call_id, lambda r: replace(r, offers=r.offers + 1))
            case CallAnswered():
                self._update(event.call_id, lambda r: replace(r, outcome=LegOutcome.ANSWERED, t_answer=wall,
                                                              agent_id=event.agent_id))
            case CallAbandoned():
                self._update(event.call_id, lambda r: replace(r, outcome=LegOutcome.ABANDONED, t_abandon=wall),
                             final=True)
            case CallExited():
                self._update(event.call_id, lambda r: replace(r, outcome=LegOutcome.FLOWOUT, t_flowout=wall,
                                                              flowout_reason=event.reason), final=True)
            case CallEnded():
                ended = self._update(event.call_id, lambda r: replace(r, t_end=wall, talk_s=event.talk_s,
                                                                      hold_s=event.hold_s), final=True)
                if ended is not None:
                    self._awaiting_acw[event.agent_id] = ended
            case _:
                pass

    def _update(self, call_id: CallId, change: Callable[[QueueLeg], QueueLeg], *,
                final: bool = False) -> QueueLeg | None:
        current = self._open.get(call_id)
        if current is None:
            return None
        row = change(current)
        detail = self._details(call_id)
        if detail is not None and detail.recording_serial and row.recording_serial is None:
            row = replace(row, recording_serial=detail.recording_serial)  # type: ignore[arg-type]
        if final:
            del self._open[call_id]
        else:
            self._open[call_id] = row
        self._save(row)
        return row

    def _save(self, row: QueueLeg) -> None:
        """Save the leg's row. Rows of a leg still waiting in the queue replace each other (the
        store keeps only the last one: an upsert), so a busy node writes each leg about once."""
        if self.store is None:
            return
        waiting = row.leg_id in self._unwritten
        self._unwritten[row.leg_id] = row
        if not waiting:
            self._writes.put_nowait(row.leg_id)

    def _job(self, item: Job | LegId) -> Job:
        """The job for a queue item; a leg's newest row is taken now, on the event loop."""
        if isinstance(item, str):
            row = self._unwritten.pop(item)
            return lambda tx: tx.save_queue_leg(row)
        return item

    # ------------------------------------------------------------------------------ the CDR

    def call_ended(self, call_id: CallId, detail: CallDetail) -> None:
        """Write (or rewrite, after a wrap-up disposition) the CDR and the recording's index entry."""
        self._visits.pop(call_id, None)
        record, recording = self._cdr_rows(call_id, detail)  # now: the detail lives on

        async def save(tx: StoreOperations) -> None:
            await tx.save_call(record)
            if recording is not None:
                await tx.save_recording(recording)

        self.write(save)

    def _cdr_rows(self, call_id: CallId, d: CallDetail) -> tuple[CdrRecord, RecordingRow | None]:
        record = CdrRecord(
            call_id=call_id, node=self.node, t_arrived=d.arrived_at, sip_call_id=d.sip_call_id,
            trunk=d.trunk, caller_number=d.caller if is_number(d.caller) else None, caller_name=d.caller_name or None,
            dialled_number=d.dialled, t_ivr_answered=d.answered_at, t_ivr_left=d.queued_at, t_queued=d.queued_at,
            t_answered=d.agent_answered_at, t_ended=d.ended_at or time.time(),
            hangup_by=HangupParty(d.hung_up_by) if d.hung_up_by in ("caller", "agent", "system") else None,
            end_reason=d.end_reason, disposition=d.disposition,
            ivr_inputs={"inputs": _jsonable(d.ivr_inputs), "variables": _jsonable(d.ivr_variables)},
            crm_data={"lookups": _jsonable(d.crm)}, vip=d.vip, call_reason=d.reason,
            recording_serial=d.recording_serial,  # type: ignore[arg-type]
            final_agent=AgentId(d.agent) if d.agent else None, final_queue=QueueId(d.queue) if d.queue else None,
        )
        if not (d.recording_serial and d.recording_path and d.agent_answered_at):
            return record, None
        ended = d.ended_at or time.time()
        recording = RecordingRow(
            serial=d.recording_serial, call_id=call_id, path=d.recording_path,  # type: ignore[arg-type]
            started=d.agent_answered_at, ended=ended, duration_s=max(0.0, ended - d.agent_answered_at),
            parties=(Party(role=PartyRole.CALLER, identity=d.caller or "anonymous"),
                     Party(role=PartyRole.AGENT, identity=d.agent or "")),
            queue_id=QueueId(d.queue) if d.queue else None, agent_id=AgentId(d.agent) if d.agent else None,
        )
        return record, recording


async def _run_all(batch: list[Job], tx: StoreOperations) -> None:
    """Every job of a batch, in order, on one transaction."""
    for job in batch:
        await job(tx)


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
