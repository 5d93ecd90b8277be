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

from cti.qa.appeals import Opinion, Seat, Verdict
from cti.qa.sampling import SampleItem
from cti.store import Store, StoreUsageError
from cti.store.queries import Executor, SqlOperations

__all__ = ["AppealRow", "EvaluationRow", "QaStore", "QaTx", "RuleRow"]


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


@dataclass(frozen=True, slots=True, kw_only=True)
class EvaluationRow:
    evaluation_id: int
    recording_serial: str
    agent_id: str
    queue_id: str | None
    form_id: str
    form_version: int
    evaluator: str
    rule_id: str | None
    rule_version: int | None
    calibration: bool
    state: str
    created_at: float
    published_at: float | None
    revision: int = 0  # the latest revision: its number and result
    result: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        r = self.result or {}
        return {"evaluation_id": self.evaluation_id, "recording_serial": self.recording_serial,
                "agent_id": self.agent_id, "queue_id": self.queue_id, "form_id": self.form_id,
                "form_version": self.form_version, "evaluator": self.evaluator, "rule_id": self.rule_id,
                "rule_version": self.rule_version, "calibration": self.calibration, "state": self.state,
                "created_at": self.created_at, "published_at": self.published_at, "revision": self.revision,
                "total": r.get("total"), "raw_total": r.get("raw_total"), "failed": r.get("failed"),
                "result": self.result}


@dataclass(frozen=True, slots=True, kw_only=True)
class AppealRow:
    appeal_id: int
    evaluation_id: int
    agent_id: str
    evaluator: str
    item_ids: tuple[str, ...]
    reason: str
    state: str
    filed_at: float
    reviewer: str | None = None
    decided_at: float | None = None
    comment: str | None = None
    leader: str | None = None
    admitted_at: float | None = None
    decision_deadline: float | None = None
    decision_rule: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"appeal_id": self.appeal_id, "evaluation_id": self.evaluation_id, "agent_id": self.agent_id,
                "evaluator": self.evaluator, "item_ids": list(self.item_ids), "reason": self.reason,
                "state": self.state, "filed_at": self.filed_at, "reviewer": self.reviewer,
                "decided_at": self.decided_at, "comment": self.comment, "leader": self.leader,
                "admitted_at": self.admitted_at, "decision_deadline": self.decision_deadline,
                "decision_rule": self.decision_rule}


_EVAL_COLS = ("evaluation_id, recording_serial, agent_id, queue_id, form_id, form_version, evaluator, rule_id, "
              "rule_version, calibration, state, created_at, published_at")
_EVAL_INSERT = _EVAL_COLS.removeprefix("evaluation_id, ")
_EVAL_SELECT = ("SELECT " + ", ".join(f"e.{c.strip()}" for c in _EVAL_COLS.split(",")) + ", r.revision, r.scores "
                "FROM qa_evaluations e LEFT JOIN qa_revisions r ON r.evaluation_id = e.evaluation_id AND "
                "r.revision = (SELECT MAX(revision) FROM qa_revisions m WHERE m.evaluation_id = e.evaluation_id)")
_APPEAL_COLS = ("appeal_id, evaluation_id, agent_id, evaluator, item_ids, reason, state, filed_at, reviewer, "
                "decided_at, comment, leader, admitted_at, decision_deadline, decision_rule")


def _int(v: Any) -> int:
    return int(v)


def _json(v: Any) -> str:
    return json.dumps(v, sort_keys=True, ensure_ascii=False)


def _evaluation(r: Sequence[Any]) -> EvaluationRow:
    return EvaluationRow(evaluation_id=int(r[0]), recording_serial=str(r[1]), agent_id=str(r[2]),
                         queue_id=_opt_str(r[3]), form_id=str(r[4]), form_version=int(r[5]), evaluator=str(r[6]),
                         rule_id=_opt_str(r[7]), rule_version=None if r[8] is None else int(r[8]),
                         calibration=bool(r[9]), state=str(r[10]), created_at=float(r[11]),
                         published_at=_opt_float(r[12]), revision=int(r[13] or 0),
                         result=None if r[14] is None else json.loads(str(r[14])))


def _appeal(r: Sequence[Any]) -> AppealRow:
    return AppealRow(appeal_id=int(r[0]), evaluation_id=int(r[1]), agent_id=str(r[2]), evaluator=str(r[3]),
                     item_ids=tuple(json.loads(str(r[4]))), reason=str(r[5]), state=str(r[6]),
                     filed_at=float(r[7]), reviewer=_opt_str(r[8]), decided_at=_opt_float(r[9]),
                     comment=_opt_str(r[10]), leader=_opt_str(r[11]), admitted_at=_opt_float(r[12]),
                     decision_deadline=_opt_float(r[13]), decision_rule=_opt_str(r[14]))


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

    # ------------------------------------------------------------------------------ forms
    async def insert_form(self, form_id: str, version: int, body: dict[str, Any], at: float, by: str) -> None:
        await self.x.execute("INSERT INTO qa_forms (form_id, version, body, published_at, published_by) "
                             "VALUES (?, ?, ?, ?, ?)", (form_id, version, _json(body), at, by))

    async def get_form(self, form_id: str, version: int | None = None) -> tuple[int, dict[str, Any]] | None:
        """(version, body) of the given or the latest version."""
        if version is None:
            rows = await self.x.fetch_all("SELECT version, body FROM qa_forms WHERE form_id = ? "
                                          "ORDER BY version DESC LIMIT 1", (form_id,))
        else:
            rows = await self.x.fetch_all("SELECT version, body FROM qa_forms WHERE form_id = ? AND version = ?",
                                          (form_id, version))
        return (int(rows[0][0]), json.loads(str(rows[0][1]))) if rows else None  # type: ignore[call-overload]

    async def list_forms(self) -> list[dict[str, Any]]:
        rows = await self.x.fetch_all("SELECT form_id, version, published_at, published_by, body FROM qa_forms "
                                      "ORDER BY form_id, version")
        return [{"form_id": r[0], "version": r[1], "published_at": r[2], "published_by": r[3],
                 "title": json.loads(str(r[4])).get("title", "")} for r in rows]

    # ------------------------------------------------------------------------------ evaluations
    async def insert_evaluation(self, e: EvaluationRow) -> int:
        rows = await self.x.fetch_all(
            f"INSERT INTO qa_evaluations ({_EVAL_INSERT}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "RETURNING evaluation_id",
            (e.recording_serial, e.agent_id, e.queue_id, e.form_id, e.form_version, e.evaluator, e.rule_id,
             e.rule_version, e.calibration, e.state, e.created_at, e.published_at))
        return _int(rows[0][0])

    async def insert_revision(self, evaluation_id: int, revision: int, result: dict[str, Any], author: str,
                              at: float, why: str | None) -> None:
        await self.x.execute(
            "INSERT INTO qa_revisions (evaluation_id, revision, scores, total, raw_total, failed, author, at, why) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (evaluation_id, revision, _json(result), result["total"], result["raw_total"], result["failed"], author,
             at, why))

    async def set_evaluation_state(self, evaluation_id: int, state: str, expected: str) -> bool:
        """Move the evaluation from ``expected`` to ``state``; False when another step came first."""
        return await self.x.execute("UPDATE qa_evaluations SET state = ? WHERE evaluation_id = ? AND state = ?",
                                    (state, evaluation_id, expected)) == 1

    async def get_evaluation(self, evaluation_id: int) -> EvaluationRow | None:
        rows = await self.x.fetch_all(f"{_EVAL_SELECT} WHERE e.evaluation_id = ?", (evaluation_id,))
        return _evaluation(rows[0]) if rows else None

    async def evaluations(self, *, agent_id: str | None = None, evaluator: str | None = None,
                          recording_serial: str | None = None, limit: int = 500) -> list[EvaluationRow]:
        where, params = [], []
        for column, value in (("e.agent_id", agent_id), ("e.evaluator", evaluator),
                              ("e.recording_serial", recording_serial)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = _EVAL_SELECT + (" WHERE " + " AND ".join(where) if where else "")
        rows = await self.x.fetch_all(f"{sql} ORDER BY e.evaluation_id DESC LIMIT ?", (*params, limit))
        return [_evaluation(r) for r in rows]

    async def unsettled(self, states: Sequence[str], published_before: float, limit: int = 500) -> list[EvaluationRow]:
        """Evaluations (not calibration) in one of ``states`` published at or before ``published_before``, oldest
        first: the candidates of finalisation."""
        marks = ", ".join("?" for _ in states)
        rows = await self.x.fetch_all(
            f"{_EVAL_SELECT} WHERE e.state IN ({marks}) AND e.calibration = ? AND e.published_at <= ? "
            "ORDER BY e.published_at, e.evaluation_id LIMIT ?", (*states, False, published_before, limit))
        return [_evaluation(r) for r in rows]

    async def score_rows(self) -> list[tuple[str, str, str, float | None]]:
        """(agent_id, evaluator, state, the latest revision's total) of every evaluation but calibration scores."""
        rows = await self.x.fetch_all(
            "SELECT e.agent_id, e.evaluator, e.state, r.total FROM qa_evaluations e JOIN qa_revisions r ON "
            "r.evaluation_id = e.evaluation_id AND r.revision = (SELECT MAX(revision) FROM qa_revisions m WHERE "
            "m.evaluation_id = e.evaluation_id) WHERE e.calibration = ? ORDER BY e.evaluation_id", (False,))
        return [(str(r[0]), str(r[1]), str(r[2]), _opt_float(r[3])) for r in rows]

    async def revisions(self, evaluation_id: int) -> list[dict[str, Any]]:
        rows = await self.x.fetch_all("SELECT revision, scores, author, at, why FROM qa_revisions "
                                      "WHERE evaluation_id = ? ORDER BY revision", (evaluation_id,))
        return [{"revision": r[0], "result": json.loads(str(r[1])), "author": r[2], "at": r[3], "why": r[4]}
                for r in rows]

    # ------------------------------------------------------------------------------ appeals
    async def insert_appeal(self, a: AppealRow) -> int:
        rows = await self.x.fetch_all(
            "INSERT INTO qa_appeals (evaluation_id, agent_id, evaluator, item_ids, reason, state, filed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING appeal_id",
            (a.evaluation_id, a.agent_id, a.evaluator, _json(list(a.item_ids)), a.reason, a.state, a.filed_at))
        return _int(rows[0][0])

    async def decide_appeal(self, appeal_id: int, *, state: str, was: str, reviewer: str, at: float, comment: str,
                            rule: str | None = None) -> bool:
        """End an appeal (refused, withdrawn or decided); False if it was no longer in state ``was``."""
        return await self.x.execute(
            "UPDATE qa_appeals SET state = ?, reviewer = ?, decided_at = ?, comment = ?, decision_rule = ? "
            "WHERE appeal_id = ? AND state = ?", (state, reviewer, at, comment, rule, appeal_id, was)) == 1

    async def admit_appeal(self, appeal_id: int, *, leader: str, at: float, deadline: float) -> bool:
        return await self.x.execute(
            "UPDATE qa_appeals SET state = 'accepted_by_leader', leader = ?, admitted_at = ?, decision_deadline = ? "
            "WHERE appeal_id = ? AND state = 'filed'", (leader, at, deadline, appeal_id)) == 1

    async def set_appeal_state(self, appeal_id: int, state: str, was: str) -> bool:
        return await self.x.execute("UPDATE qa_appeals SET state = ? WHERE appeal_id = ? AND state = ?",
                                    (state, appeal_id, was)) == 1

    async def insert_opinion(self, appeal_id: int, o: Opinion, at: float) -> None:
        await self.x.execute(
            "INSERT INTO qa_appeal_opinions (appeal_id, seat, member, verdict, points, comment, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (appeal_id, o.seat.value, o.member, o.verdict.value, _json(dict(o.points)), o.comment, at))

    async def opinions(self, appeal_id: int) -> list[tuple[Opinion, float]]:
        rows = await self.x.fetch_all("SELECT seat, member, verdict, points, comment, at FROM qa_appeal_opinions "
                                      "WHERE appeal_id = ? ORDER BY at, seat", (appeal_id,))
        return [(Opinion(seat=Seat(str(r[0])), member=str(r[1]), verdict=Verdict(str(r[2])),
                         points=json.loads(str(r[3])), comment=str(r[4])), float(str(r[5]))) for r in rows]

    async def appeals(self, *, evaluation_id: int | None = None, appeal_id: int | None = None,
                      agent_id: str | None = None) -> list[AppealRow]:
        where, params = [], []
        for column, value in (("evaluation_id", evaluation_id), ("appeal_id", appeal_id), ("agent_id", agent_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT {_APPEAL_COLS} FROM qa_appeals" + (" WHERE " + " AND ".join(where) if where else "")
        return [_appeal(r) for r in await self.x.fetch_all(f"{sql} ORDER BY appeal_id", params)]

    async def appeal_counts(self) -> list[tuple[str, str, str, int]]:
        """(agent_id, evaluator, state, count) over every appeal."""
        rows = await self.x.fetch_all("SELECT agent_id, evaluator, state, COUNT(*) FROM qa_appeals "
                                      "GROUP BY agent_id, evaluator, state ORDER BY agent_id, evaluator, state")
        return [(str(r[0]), str(r[1]), str(r[2]), int(r[3])) for r in rows]  # type: ignore[call-overload]


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
