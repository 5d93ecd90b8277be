"""The QA service: the asyncio side of the pure cores (rules, sampling, scoring, appeals) over the store.

One method per API action; each checks who may act, runs the core with ``now`` from the injected clock, writes
its rows and the audit step in one store transaction, then publishes the ``qa.*`` event. Errors are the
:mod:`cti.qa.errors` tree (the routes answer them with their ``status_hint`` and ``code``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import structlog

from cti.ids import AgentId
from cti.qa.errors import NotFoundError, RuleInvalidError, StateError
from cti.qa.rules import Rule, parse_rule, rule_hash
from cti.qa.sampling import SampleItem, assign_evaluators, commitment, facts_from_legs, select, unsettled_calls
from cti.qa.store import QaStore, RuleRow
from cti.store import LegTime, Store

__all__ = ["Directory", "QaService", "item_json", "period_bounds"]

log = structlog.get_logger("cti.qa")
_COMMITMENT_HEX = 64


class Directory(Protocol):
    """Who is who, from the node's configuration (``cti.floor.control.Control`` provides it)."""

    def agent_team(self, agent_id: AgentId) -> str | None: ...
    def supervisor_scope(self, supervisor_id: str) -> tuple[frozenset[str], frozenset[str]]: ...


Publish = Callable[[str, Mapping[str, Any]], None]


def period_bounds(rule: Rule) -> tuple[float, float]:
    """UTC epoch seconds of the period's first local midnight and of the midnight after its last day."""
    first = dt.datetime.combine(rule.start, dt.time(), rule.tz)
    after = dt.datetime.combine(rule.end + dt.timedelta(days=1), dt.time(), rule.tz)
    return first.timestamp(), after.timestamp()


class QaService:
    """QA actions over a store; ``zone`` is the site's time zone (``node.timezone``)."""

    def __init__(self, store: Store, *, zone: str = "UTC", clock: Callable[[], float],
                 directory: Directory | None = None, publish: Publish | None = None) -> None:
        self.qa = QaStore(store)
        self.store = store
        self.zone = zone
        self.clock = clock
        self.directory = directory
        self._publish = publish

    def publish_event(self, type_: str, data: Mapping[str, Any]) -> None:
        if self._publish is not None:
            self._publish(type_, data)

    # ------------------------------------------------------------------------------ rules
    async def publish_rule(self, body: Any, *, actor: str, seed_commitment: str | None = None) -> dict[str, Any]:
        """Validate and publish a rule version before its period starts. Without ``seed_commitment`` the node
        draws a 256-bit seed and keeps it until the period closes; with one, the author reveals the seed at close.

        Raises:
            RuleInvalidError: the rule (or the commitment) was refused.
            StateError: qa.rule_published (that version exists: published rules never change),
                qa.period_started (too late to announce it).
        """
        rule = parse_rule(body, default_tz=self.zone)
        seed: str | None = None
        if seed_commitment is None:
            seed = secrets.token_hex(32)
            seed_commitment = commitment(seed)
        elif (not seed_commitment.startswith("sha256:") or len(seed_commitment) != 7 + _COMMITMENT_HEX
              or any(c not in "0123456789abcdef" for c in seed_commitment[7:])):
            raise RuleInvalidError(["seed_commitment: sha256: and 64 lower-case hex digits"])
        now = self.clock()
        start, _ = period_bounds(rule)
        if now >= start:
            raise StateError(f"the period of {rule.rule_id} starts {rule.start} ({rule.tz.key}); a rule is "
                             "published before its period", code="qa.period_started")
        row = RuleRow(rule_id=rule.rule_id, version=rule.version, body=dict(rule.source), rule_hash=rule_hash(rule),
                      seed_commitment=seed_commitment, seed=seed, seed_revealed=False, published_at=now,
                      published_by=actor, closed_at=None, closed_by=None, days=None, input_digest=None,
                      selection_digest=None)
        async with self.qa.transaction() as tx:
            existing = await tx.get_rule(rule.rule_id, rule.version)
            if existing is not None:
                raise StateError(f"rule {rule.rule_id} version {rule.version} is published and cannot change; "
                                 "publish a new version", code="qa.rule_published")
            latest = await tx.get_rule(rule.rule_id)
            if latest is not None and latest.version > rule.version:
                raise StateError(f"rule {rule.rule_id} has version {latest.version} already",
                                 code="qa.rule_published")
            await tx.insert_rule(row)
            await tx.audit(f"rule:{rule.rule_id}/{rule.version}", "published", actor, now,
                           {"rule_hash": row.rule_hash, "seed_commitment": seed_commitment})
        log.info("qa.rule.published", rule_id=rule.rule_id, version=rule.version, actor=actor)
        self.publish_event("qa.rule.published", {"rule_id": rule.rule_id, "version": rule.version,
                                                 "seed_commitment": seed_commitment, "rule_hash": row.rule_hash})
        return row.public()

    async def rule(self, rule_id: str, version: int | None = None) -> RuleRow:
        """Raises: NotFoundError."""
        async with self.qa.transaction() as tx:
            row = await tx.get_rule(rule_id, version)
        if row is None:
            raise NotFoundError(f"no rule {rule_id}" + ("" if version is None else f" version {version}"))
        return row

    async def rules(self) -> list[RuleRow]:
        async with self.qa.transaction() as tx:
            return await tx.list_rules()

    async def samples(self, rule_id: str, version: int | None = None) -> tuple[RuleRow, list[SampleItem]]:
        row = await self.rule(rule_id, version)
        async with self.qa.transaction() as tx:
            return row, await tx.samples(row.rule_id, row.version)

    async def _selection(self, rule: Rule, seed: str) -> Any:
        start, end = period_bounds(rule)
        legs = await self.store.queue_legs_between(start, end, by=LegTime.RESOLVED)
        return select(rule, seed, facts_from_legs(legs, rule.tz))

    async def _refuse_open_calls(self, rule: Rule) -> None:
        """Raises: StateError qa.calls_open, naming the period's calls still connected or in wrap-up."""
        start, end = period_bounds(rule)
        legs = await self.store.queue_legs_between(start, end, by=LegTime.RESOLVED)
        agents = sorted({g.agent_id for g in legs if g.agent_id is not None})
        current = {a: await self.store.current_agent_state(a) for a in agents}
        found = unsettled_calls(legs, {str(a): row for a, row in current.items()})
        if found:
            named = ", ".join(c.text() for c in found[:10]) + (f" and {len(found) - 10} more" if len(found) > 10
                                                               else "")
            raise StateError(f"{len(found)} call(s) of the period are not final yet: {named}; their records change "
                             "when they end (talk, wrap-up time): close the period after that",
                             code="qa.calls_open")

    async def close_rule(self, rule_id: str, version: int | None = None, *, actor: str,
                         seed: str | None = None) -> dict[str, Any]:
        """Close the period: reveal the seed, compute and store the sample, its digests and the evaluators.

        Raises:
            NotFoundError: no such rule. StateError: qa.period_open (the period has not ended), qa.rule_closed,
                qa.seed_mismatch (the seed given does not hash to the commitment), qa.seed_required,
                qa.calls_open (calls of the period still connected or in wrap-up: their records are not final),
                qa.no_independent_evaluator.
        """
        row = await self.rule(rule_id, version)
        rule = parse_rule(row.body)
        now = self.clock()
        if row.closed_at is not None:
            raise StateError(f"rule {rule_id} version {row.version} was closed already", code="qa.rule_closed")
        if now < period_bounds(rule)[1]:
            raise StateError(f"the period of {rule_id} ends with {rule.end} ({rule.tz.key})", code="qa.period_open")
        if seed is None:
            seed = row.seed
            if seed is None:
                raise StateError("this rule's author holds the seed: give it to close the period",
                                 code="qa.seed_required")
        if commitment(seed) != row.seed_commitment:
            raise StateError("the seed does not hash to the published commitment", code="qa.seed_mismatch")
        await self._refuse_open_calls(rule)
        selection = await self._selection(rule, seed)
        items = list(selection.items)
        if rule.assign is not None:
            d = self.directory
            team_of = {i.agent_id: d.agent_team(i.agent_id) if d else None for i in items}
            leads = {e: d.supervisor_scope(e)[1] if d else frozenset() for e in rule.assign.evaluators}
            items = assign_evaluators(rule, seed, items, team_of=team_of, leads=leads)
        async with self.qa.transaction() as tx:
            if not await tx.close_rule(row.rule_id, row.version, seed=seed, closed_at=now, closed_by=actor,
                                       days=list(selection.days), input_digest=selection.input_digest,
                                       selection_digest=selection.digest):
                raise StateError(f"rule {rule_id} version {row.version} was closed already", code="qa.rule_closed")
            await tx.insert_samples(row.rule_id, row.version, items)
            await tx.audit(f"rule:{row.rule_id}/{row.version}", "closed", actor, now,
                           {"selection_digest": selection.digest, "samples": len(items)})
        log.info("qa.rule.closed", rule_id=rule_id, version=row.version, samples=len(items))
        self.publish_event("qa.sample.selected", {"rule_id": row.rule_id, "version": row.version, "seed": seed,
                                                  "selection_digest": selection.digest, "samples": len(items)})
        closed = await self.rule(row.rule_id, row.version)
        return closed.public() | {"samples": [item_json(i) for i in items]}

    async def assigned(self, evaluator: str) -> list[dict[str, Any]]:
        """The sampled calls assigned to ``evaluator``, over every closed rule."""
        async with self.qa.transaction() as tx:
            found = await tx.samples_for_evaluator(evaluator)
        return [{"rule_id": r, "version": v} | item_json(i) for r, v, i in found]

    async def verify(self, rule_id: str, version: int | None = None) -> dict[str, Any]:
        """Recompute the sample of a closed rule from the records and the revealed seed.

        Returns ``{"match": bool, "checks": {...}, ...}``: the seed hashes to the commitment, the stored rule
        has the published hash, and the recomputed input and selection digests equal the stored ones.

        Raises:
            NotFoundError: no such rule. StateError: qa.rule_open (not closed: nothing to verify yet).
        """
        row = await self.rule(rule_id, version)
        if row.closed_at is None or row.seed is None or not row.seed_revealed:
            raise StateError(f"rule {rule_id} version {row.version} is not closed yet", code="qa.rule_open")
        rule = parse_rule(row.body)
        selection = await self._selection(rule, row.seed)
        checks = {"seed_commitment": commitment(row.seed) == row.seed_commitment,
                  "rule_hash": rule_hash(rule) == row.rule_hash,
                  "input_digest": selection.input_digest == row.input_digest,
                  "selection_digest": selection.digest == row.selection_digest}
        async with self.qa.transaction() as tx:
            stored = await tx.samples(row.rule_id, row.version)
        checks["stored_samples"] = [(item_json(i) | {"evaluator": None}) for i in stored] == [
            item_json(i) for i in selection.items]
        return {"rule_id": row.rule_id, "version": row.version, "match": all(checks.values()), "checks": checks,
                "stored_digest": row.selection_digest, "recomputed_digest": selection.digest,
                "seed": row.seed, "seed_sha256": "sha256:" + hashlib.sha256(row.seed.encode()).hexdigest()}


def item_json(i: SampleItem) -> dict[str, Any]:
    return {"agent_id": i.agent_id, "local_date": i.local_date, "queue_id": i.queue_id,
            "recording_serial": i.recording_serial, "leg_id": i.leg_id, "reason": i.reason,
            "eligible": i.eligible, "evaluator": i.evaluator}
