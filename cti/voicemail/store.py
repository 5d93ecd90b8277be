"""Voicemail messages in the node's store (table ``voicemail``; docs/storage.md, docs/voicemail.md).

The row of a new message is written by the call's record writer (:func:`insert_job`), in the batch that also
carries the ``voicemail.left`` outbox rows; reads and the heard mark use their own transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cti.store import Executor, NotFoundError, SqlOperations, Store, StoreError, StoreOperations
from cti.store.rows import Row, SqlParam
from cti.voicemail.model import VoicemailMessage

__all__ = ["VoicemailStore", "insert_job"]

_COLUMNS = ("voicemail_id, call_id, mailbox, queue, caller_number, started, duration_s, path, heard, heard_at, "
            "heard_by")
MAX_LIST = 1000


def _x(tx: StoreOperations) -> Executor:
    if not isinstance(tx, SqlOperations):  # every backend of cti.store is SQL; a fake store is not enough here
        raise StoreError("voicemail needs an SQL store")
    return tx.executor


def _message(row: Row) -> VoicemailMessage:
    try:
        vid, call_id, mailbox, queue, caller, started, duration, path, heard, heard_at, heard_by = row
        return VoicemailMessage(id=str(vid), call_id=str(call_id), mailbox=str(mailbox),
                                queue=None if queue is None else str(queue), caller=str(caller),
                                started=float(str(started)), duration_s=float(str(duration)), path=str(path),
                                heard=bool(heard), heard_at=None if heard_at is None else float(str(heard_at)),
                                heard_by=None if heard_by is None else str(heard_by))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"a stored voicemail row does not decode: {exc}") from exc


def insert_job(message: VoicemailMessage) -> Callable[[StoreOperations], Awaitable[None]]:
    """A record-writer job that inserts ``message`` (unheard)."""
    async def insert(tx: StoreOperations) -> None:
        await _x(tx).execute(
            f"INSERT INTO voicemail ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (message.id, message.call_id, message.mailbox, message.queue, message.caller, message.started,
             message.duration_s, message.path, False, None, None))
    return insert


class VoicemailStore:
    """Reads and the heard mark of voicemail messages on one ``Store``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def list(self, *, mailboxes: frozenset[str] | None = None, mailbox: str | None = None,
                   unheard: bool | None = None, queues: frozenset[str] | None = None,
                   limit: int = MAX_LIST) -> list[VoicemailMessage]:
        """Messages newest first; ``queues`` (not None) keeps only messages of those queues (a supervisor's scope).

        Raises:
            StoreError: the database failed.
        """
        sql = f"SELECT {_COLUMNS} FROM voicemail WHERE 1 = 1"
        params: list[SqlParam] = []
        if mailbox is not None:
            sql += " AND mailbox = ?"
            params.append(mailbox)
        if unheard is not None:
            sql += " AND heard = ?"
            params.append(not unheard)
        if queues is not None:
            if not queues:
                return []
            sql += f" AND queue IN ({', '.join('?' for _ in queues)})"
            params.extend(sorted(queues))
        sql += " ORDER BY started DESC, voicemail_id LIMIT ?"
        params.append(limit)
        async with self._store.transaction() as tx:
            return [_message(r) for r in await _x(tx).fetch_all(sql, params)]

    async def get(self, voicemail_id: str) -> VoicemailMessage:
        """Raises: NotFoundError (no such message), StoreError."""
        async with self._store.transaction() as tx:
            rows = await _x(tx).fetch_all(f"SELECT {_COLUMNS} FROM voicemail WHERE voicemail_id = ?",
                                          (voicemail_id,))
        if not rows:
            raise NotFoundError(f"no voicemail {voicemail_id!r}")
        return _message(rows[0])

    async def mark_heard(self, voicemail_id: str, by: str, now: float) -> VoicemailMessage:
        """Mark a message heard (the first listener and time are kept; marking again changes nothing).

        Raises:
            NotFoundError: no such message. StoreError: the database failed.
        """
        async with self._store.transaction() as tx:
            x = _x(tx)
            await x.execute("UPDATE voicemail SET heard = ?, heard_at = ?, heard_by = ? "
                            "WHERE voicemail_id = ? AND heard = ?", (True, now, by, voicemail_id, False))
            rows = await x.fetch_all(f"SELECT {_COLUMNS} FROM voicemail WHERE voicemail_id = ?", (voicemail_id,))
        if not rows:
            raise NotFoundError(f"no voicemail {voicemail_id!r}")
        return _message(rows[0])
