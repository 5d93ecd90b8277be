"""Schedules and approved exceptions in the node's store (tables ``schedule_entries`` and ``schedule_exceptions``,
migration 4; docs/adherence.md, docs/storage.md).

Every operation runs in one transaction of the ``cti.store.Store`` (SQLite or PostgreSQL, the same portable SQL):
an import deletes what it replaces, checks the new plan against what stays, and inserts, or does nothing at all.
On PostgreSQL a transaction-level advisory lock per agent serialises two imports or edits of one agent's plan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from cti.adherence.importers import Numbered, check_plan
from cti.adherence.model import Activity, ApprovedException, ImportFileError, ScheduleEntry, ScheduleError
from cti.store import Dialect, Executor, NotFoundError, SqlOperations, Store, StoreError, StoreOperations
from cti.store.rows import Row

__all__ = ["ImportSummary", "ScheduleStore"]

_LOCKS = 7_202  # PostgreSQL advisory-lock namespace of schedule changes (the key is hashtext(agent))
_ENTRY_COLUMNS = "entry_id, agent_id, start_ts, end_ts, activity, note"
_EXC_COLUMNS = "exception_id, agent_id, start_ts, end_ts, activity, reason, approved_by, approved_at"
_DAY = 86_400.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportSummary:
    agents: int
    imported: int
    replaced: int


def _sql(tx: StoreOperations) -> tuple[Executor, Dialect]:
    if not isinstance(tx, SqlOperations):  # every backend of cti.store is SQL; a fake store is not enough here
        raise StoreError("schedules need an SQL store")
    return tx.executor, tx.dialect


def _entry(row: Row) -> ScheduleEntry:
    try:
        entry_id, agent, start, end, activity, note = row
        return ScheduleEntry(entry_id=int(str(entry_id)), agent_id=str(agent), start=float(str(start)),
                             end=float(str(end)), activity=Activity(str(activity)),
                             note=None if note is None else str(note))
    except (ValueError, ScheduleError) as exc:
        raise StoreError(f"a stored schedule entry does not decode: {exc}") from exc


def _exception(row: Row) -> ApprovedException:
    try:
        exc_id, agent, start, end, activity, reason, by, at = row
        return ApprovedException(exception_id=int(str(exc_id)), agent_id=str(agent), start=float(str(start)),
                                 end=float(str(end)), activity=None if activity is None else Activity(str(activity)),
                                 reason=str(reason), approved_by=str(by), approved_at=float(str(at)))
    except (ValueError, ScheduleError) as exc:
        raise StoreError(f"a stored approved exception does not decode: {exc}") from exc


class ScheduleStore:
    """Reads and writes of schedules on one ``Store``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def _lock(self, x: Executor, dialect: Dialect, agents: Iterable[str]) -> None:
        if dialect is Dialect.POSTGRES:
            for agent in sorted(set(agents)):  # one order everywhere: no deadlock between two imports
                await x.fetch_all(f"SELECT pg_advisory_xact_lock({_LOCKS}, hashtext(?))", (agent,))

    @staticmethod
    async def _entries(x: Executor, start: float, end: float, agent: str | None) -> list[ScheduleEntry]:
        sql = f"SELECT {_ENTRY_COLUMNS} FROM schedule_entries WHERE start_ts < ? AND end_ts > ?"
        params: list[str | float] = [end, start]
        if agent is not None:
            sql += " AND agent_id = ?"
            params.append(agent)
        return [_entry(r) for r in await x.fetch_all(sql + " ORDER BY agent_id, start_ts, entry_id", params)]

    async def import_entries(self, entries: Sequence[Numbered], source: str, now: float) -> ImportSummary:
        """Store a checked file: per agent, entries that start within the file's span for that agent are replaced.

        Raises:
            ImportFileError: the plan conflicts with what stays stored (nothing is changed).
            StoreError: the database failed (nothing is changed).
        """
        spans: dict[str, tuple[float, float]] = {}
        for _line, e in entries:
            lo, hi = spans.get(e.agent_id, (e.start, e.end))
            spans[e.agent_id] = (min(lo, e.start), max(hi, e.end))
        async with self._store.transaction() as tx:
            x, dialect = _sql(tx)
            await self._lock(x, dialect, spans)
            replaced = 0
            kept: list[ScheduleEntry] = []
            for agent, (lo, hi) in spans.items():
                replaced += await x.execute(
                    "DELETE FROM schedule_entries WHERE agent_id = ? AND start_ts >= ? AND start_ts < ?",
                    (agent, lo, hi))
                kept += await self._entries(x, lo - _DAY, hi + _DAY, agent)
            problems = check_plan(entries, source, kept)
            if problems:
                raise ImportFileError(problems)
            for _line, e in entries:
                await self._insert(x, e, source, now)
        return ImportSummary(agents=len(spans), imported=len(entries), replaced=replaced)

    @staticmethod
    async def _insert(x: Executor, e: ScheduleEntry, source: str | None, now: float) -> int:
        rows = await x.fetch_all(
            "INSERT INTO schedule_entries (agent_id, start_ts, end_ts, activity, note, source, imported_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING entry_id",
            (e.agent_id, e.start, e.end, e.activity.value, e.note, source, now))
        return int(str(rows[0][0]))

    async def entries_between(self, start: float, end: float, agent: str | None = None) -> list[ScheduleEntry]:
        """Entries overlapping ``[start, end)``, by agent and start."""
        async with self._store.transaction() as tx:
            x, _ = _sql(tx)
            return await self._entries(x, start, end, agent)

    async def add_entry(self, entry: ScheduleEntry, now: float, *, replacing: int | None = None) -> ScheduleEntry:
        """Add one entry, or change entry ``replacing`` in place (same id), after checking it against the plan.

        Raises:
            NotFoundError: ``replacing`` is not a stored entry.
            ScheduleError: it overlaps or lies outside a shift (the reason says which).
        """
        async with self._store.transaction() as tx:
            x, dialect = _sql(tx)
            await self._lock(x, dialect, [entry.agent_id])
            if replacing is not None:
                old = await x.fetch_all(f"SELECT {_ENTRY_COLUMNS} FROM schedule_entries WHERE entry_id = ?",
                                        (replacing,))
                if not old:
                    raise NotFoundError(f"no schedule entry {replacing}")
                await self._lock(x, dialect, [_entry(old[0]).agent_id])
            kept = [e for e in await self._entries(x, entry.start - _DAY, entry.end + _DAY, entry.agent_id)
                    if e.entry_id != replacing]
            problems = check_plan([(1, entry)], "entry", kept)
            if problems:
                raise ScheduleError(problems[0].reason)
            if replacing is None:
                return replace(entry, entry_id=await self._insert(x, entry, "api", now))
            await x.execute("UPDATE schedule_entries SET agent_id = ?, start_ts = ?, end_ts = ?, activity = ?, "
                            "note = ?, source = 'api', imported_at = ? WHERE entry_id = ?",
                            (entry.agent_id, entry.start, entry.end, entry.activity.value, entry.note, now,
                             replacing))
            return replace(entry, entry_id=replacing)

    async def delete_entry(self, entry_id: int) -> ScheduleEntry:
        """Remove one entry; removing a shift that still holds activities is refused.

        Raises:
            NotFoundError: no such entry. ScheduleError: a shift with activities inside.
        """
        async with self._store.transaction() as tx:
            x, dialect = _sql(tx)
            found = await x.fetch_all(f"SELECT {_ENTRY_COLUMNS} FROM schedule_entries WHERE entry_id = ?",
                                      (entry_id,))
            if not found:
                raise NotFoundError(f"no schedule entry {entry_id}")
            entry = _entry(found[0])
            await self._lock(x, dialect, [entry.agent_id])
            await x.execute("DELETE FROM schedule_entries WHERE entry_id = ?", (entry_id,))
            kept = await self._entries(x, entry.start - _DAY, entry.end + _DAY, entry.agent_id)
            orphans = check_plan([(1, e) for e in kept if e.activity is not Activity.SHIFT], "entry",
                                 [e for e in kept if e.activity is Activity.SHIFT])
            if orphans:
                raise ScheduleError(f"the shift still holds activities: remove them first ({orphans[0].reason})")
        return entry

    async def add_exception(self, exc: ApprovedException) -> ApprovedException:
        """Store a supervisor-approved exception."""
        async with self._store.transaction() as tx:
            x, _ = _sql(tx)
            rows = await x.fetch_all(
                "INSERT INTO schedule_exceptions (agent_id, start_ts, end_ts, activity, reason, approved_by, "
                "approved_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING exception_id",
                (exc.agent_id, exc.start, exc.end, None if exc.activity is None else exc.activity.value,
                 exc.reason, exc.approved_by, exc.approved_at))
        return replace(exc, exception_id=int(str(rows[0][0])))

    async def exceptions_between(self, start: float, end: float,
                                 agent: str | None = None) -> list[ApprovedException]:
        """Approved exceptions overlapping ``[start, end)``."""
        async with self._store.transaction() as tx:
            x, _ = _sql(tx)
            sql = f"SELECT {_EXC_COLUMNS} FROM schedule_exceptions WHERE start_ts < ? AND end_ts > ?"
            params: list[str | float] = [end, start]
            if agent is not None:
                sql += " AND agent_id = ?"
                params.append(agent)
            return [_exception(r) for r in await x.fetch_all(sql + " ORDER BY agent_id, start_ts", params)]

    async def delete_exception(self, exception_id: int) -> None:
        """Withdraw an approved exception. Raises: NotFoundError."""
        async with self._store.transaction() as tx:
            x, _ = _sql(tx)
            if await x.execute("DELETE FROM schedule_exceptions WHERE exception_id = ?", (exception_id,)) == 0:
                raise NotFoundError(f"no approved exception {exception_id}")
