"""QA tables (docs/storage.md, migration "quality assurance"): rules and their samples, forms, evaluations and
their revisions, appeals, the audit trail and the playback log.

``QaStore`` wraps a :class:`cti.store.Store` and runs portable SQL (``?`` placeholders, the same on SQLite and
PostgreSQL) on the executor of one store transaction per method; several steps that must land together take a
``tx`` from :meth:`QaStore.transaction`. Rows come back as small frozen dataclasses; JSON columns are text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from cti.qa.sampling import SampleItem
from cti.store import Store, StoreUsageError
from cti.store.queries import Executor, SqlOperations

__all__ = ["QaStore", "QaTx", "RuleRow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleRow:
    rule_id: str
    version: int
    body: dict[str, Any]
    rule_hash: str
    seed_commitment: str
    seed: str | None  # held by the node until the period closes when it chose the seed
    seed_revealed: bool
    published_at: float
    published_by: str
    closed_at: float | None
    closed_by: str | None
    days: list[str] | None
    input_digest: str | None
    selection_digest: str | None

    def public(self) -> dict[str, Any]:
        """What anyone may see: the seed only once revealed."""
        return {"rule_id": self.rule_id, "version": self.version, "rule": self.body, "rule_hash": self.rule_hash,
                "seed_commitment": self.seed_commitment, "seed": self.seed if self.seed_revealed else None,
                "published_at": self.published_at, "published_by": self.published_by,
                "closed_at": self.closed_at, "closed_by": self.closed_by, "days": self.days,
                "input_digest": self.input_digest, "selection_digest": self.selection_digest,
                "state": "closed" if self.closed_at is not None else "published"}


_RULE_COLS = ("rule_id, version, body, rule_hash, seed_commitment, seed, seed_revealed, published_at, published_by, "
              "closed_at, closed_by, days, input_digest, selection_digest")
_SAMPLE_COLS = "agent_id, local_date, queue_id, recording_serial, leg_id, reason, eligible, evaluator"


def _opt_str(v: object) -> str | None:
    return None if v is None else str(v)


def _opt_float(v: object) -> float | None:
    return None if v is None else float(v)  # type: ignore[arg-type]


def _rule(row: Sequence[object]) -> RuleRow:
    days = row[11]
    return RuleRow(rule_id=str(row[0]), version=int(row[1]),  # type: ignore[call-overload]
                   body=json.loads(str(row[2])), rule_hash=str(row[3]), seed_commitment=str(row[4]),
                   seed=_opt_str(row[5]), seed_revealed=bool(row[6]), published_at=float(row[7]),  # type: ignore[arg-type]
                   published_by=str(row[8]), closed_at=_opt_float(row[9]), closed_by=_opt_str(row[10]),
                   days=None if days is None else json.loads(str(days)), input_digest=_opt_str(row[12]),
                   selection_digest=_opt_str(row[13]))


class QaTx:
    """The QA operations on one open store transaction."""

    def __init__(self, x: Executor) -> None:
        self.x = x

    # ------------------------------------------------------------------------------ audit
    async def audit(self, subject: str, action: str, actor: str, at: float, detail: dict[str, Any]) -> None:
        """Append one step to the audit trail (never updated nor deleted)."""
        await self.x.execute("INSERT INTO qa_audit (subject, action, actor, at, detail) VALUES (?, ?, ?, ?, ?)",
                             (subject, action, actor, at, json.dumps(detail, sort_keys=True, ensure_ascii=False)))

    async def audit_of(self, subject: str) -> list[dict[str, Any]]:
        rows = await self.x.fetch_all("SELECT action, actor, at, detail FROM qa_audit WHERE subject = ? "
                                      "ORDER BY row_id", (subject,))
        return [{"action": r[0], "actor": r[1], "at": r[2], "detail": json.loads(str(r[3]))} for r in rows]

    # ------------------------------------------------------------------------------ rules
    async def insert_rule(self, row: RuleRow) -> None:
        await self.x.execute(
            f"INSERT INTO qa_rules ({_RULE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.rule_id, row.version, json.dumps(row.body, sort_keys=True, ensure_ascii=False), row.rule_hash,
             row.seed_commitment, row.seed, row.seed_revealed, row.published_at, row.published_by, row.closed_at,
             row.closed_by, None if row.days is None else json.dumps(row.days), row.input_digest,
             row.selection_digest))

    async def get_rule(self, rule_id: str, version: int | None = None) -> RuleRow | None:
        """The given version, or the latest one."""
        if version is None:
            rows = await self.x.fetch_all(f"SELECT {_RULE_COLS} FROM qa_rules WHERE rule_id = ? "
                                          "ORDER BY version DESC LIMIT 1", (rule_id,))
        else:
            rows = await self.x.fetch_all(f"SELECT {_RULE_COLS} FROM qa_rules WHERE rule_id = ? AND version = ?",
                                          (rule_id, version))
        return _rule(rows[0]) if rows else None

    async def list_rules(self) -> list[RuleRow]:
        rows = await self.x.fetch_all(f"SELECT {_RULE_COLS} FROM qa_rules ORDER BY rule_id, version")
        return [_rule(r) for r in rows]

    async def close_rule(self, rule_id: str, version: int, *, seed: str, closed_at: float, closed_by: str,
                         days: list[str], input_digest: str, selection_digest: str) -> bool:
        """Reveal the seed and store the digests; False when it was closed already."""
        changed = await self.x.execute(
            "UPDATE qa_rules SET seed = ?, seed_revealed = ?, closed_at = ?, closed_by = ?, days = ?, "
            "input_digest = ?, selection_digest = ? WHERE rule_id = ? AND version = ? AND closed_at IS NULL",
            (seed, True, closed_at, closed_by, json.dumps(days), input_digest, selection_digest, rule_id, version))
        return changed == 1

    async def insert_samples(self, rule_id: str, version: int, items: Sequence[SampleItem]) -> None:
        for seq, i in enumerate(items, start=1):
            await self.x.execute(
                f"INSERT INTO qa_samples (rule_id, version, seq, {_SAMPLE_COLS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rule_id, version, seq, i.agent_id, i.local_date, i.queue_id, i.recording_serial, i.leg_id, i.reason,
                 i.eligible, i.evaluator))

    async def samples(self, rule_id: str, version: int) -> list[SampleItem]:
        rows = await self.x.fetch_all(f"SELECT {_SAMPLE_COLS} FROM qa_samples WHERE rule_id = ? AND version = ? "
                                      "ORDER BY seq", (rule_id, version))
        return [_sample(r) for r in rows]

    async def samples_for_evaluator(self, evaluator: str) -> list[tuple[str, int, SampleItem]]:
        rows = await self.x.fetch_all(f"SELECT rule_id, version, {_SAMPLE_COLS} FROM qa_samples WHERE evaluator = ? "
                                      "ORDER BY rule_id, version, seq", (evaluator,))
        return [(str(r[0]), int(r[1]), _sample(r[2:])) for r in rows]  # type: ignore[call-overload]


def _sample(r: Sequence[object]) -> SampleItem:
    return SampleItem(agent_id=str(r[0]), local_date=_opt_str(r[1]), queue_id=_opt_str(r[2]),
                      recording_serial=_opt_str(r[3]), leg_id=_opt_str(r[4]), reason=str(r[5]),
                      eligible=int(r[6]), evaluator=_opt_str(r[7]))  # type: ignore[call-overload]


class QaStore:
    """QA operations over a store, one transaction each (or several in :meth:`transaction`)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[QaTx]:
        async with self.store.transaction() as ops:
            if not isinstance(ops, SqlOperations):
                raise StoreUsageError("the QA tables need an SQL store (SQLite or PostgreSQL)")
            yield QaTx(ops.executor)
