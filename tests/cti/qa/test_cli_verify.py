"""``cti qa verify RULE_ID --db``: anyone with read access recomputes a closed rule's sample; a changed seed, rule
or call record is a mismatch (exit 1). On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys

from click.testing import CliRunner, Result

from cti.cli import main
from cti.qa.service import QaService
from cti.store import LegId, Store
from tests.cti.qa.synthetic import EXAMPLE_RULE, at, legs


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def _cli(*args: str) -> Result:
    return await asyncio.to_thread(CliRunner().invoke, main, list(args))


@dataclasses.dataclass
class Ran:
    exit_code: int
    output: str


async def _process(*args: str) -> Ran:
    """``cti`` in its own process, as an auditor would run it."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "cti", *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode() + err.decode() if proc.returncode > 1 else out.decode())


async def _sql(store: Store, sql: str, *params: str) -> None:
    async with store.transaction() as tx:
        await tx.executor.execute(sql, params)  # type: ignore[attr-defined]


async def test_verify_says_match_and_exits_1_on_any_change(store: Store, target: str) -> None:
    clock = Clock(at("09:00") - 86400)
    qa = QaService(store, zone="Asia/Shanghai", clock=clock)
    await qa.publish_rule(EXAMPLE_RULE, actor="operator")
    for leg in legs():
        await store.save_queue_leg(leg)
    clock.now = at("00:00") + 86400
    await qa.close_rule(EXAMPLE_RULE["rule_id"], actor="operator")
    rule_id = EXAMPLE_RULE["rule_id"]

    ok = await _process("qa", "verify", rule_id, "--db", target)
    assert ok.exit_code == 0, ok.output
    assert f"{rule_id} version 1: MATCH" in ok.output

    row = await qa.rule(rule_id)
    await _sql(store, "UPDATE qa_rules SET seed = 'another seed'")  # a changed seed
    bad = await _process("qa", "verify", rule_id, "--db", target)
    assert bad.exit_code == 1 and "MISMATCH" in bad.output
    assert "seed_commitment  DIFFERS" in bad.output and "selection_digest DIFFERS" in bad.output
    await _sql(store, "UPDATE qa_rules SET seed = ?", str(row.seed))
    assert (await qa.verify(rule_id))["match"] is True

    body = row.body | {"select": {"method": "nth", "n": 1}}  # a changed rule
    await _sql(store, "UPDATE qa_rules SET body = ?", json.dumps(body, sort_keys=True))
    verdict = await qa.verify(rule_id)
    assert verdict["match"] is False and verdict["checks"]["rule_hash"] is False
    await _sql(store, "UPDATE qa_rules SET body = ?", json.dumps(row.body, sort_keys=True))
    assert (await qa.verify(rule_id))["match"] is True

    leg = await store.get_queue_leg(LegId("leg-2"))  # a changed call record (one before 11:00, not sampled)
    assert leg is not None
    await store.save_queue_leg(dataclasses.replace(leg, talk_s=leg.talk_s + 5))
    bad = await _process("qa", "verify", rule_id, "--db", target, "--json")
    assert bad.exit_code == 1
    verdict = json.loads(bad.output)
    assert verdict["checks"]["input_digest"] is False and verdict["checks"]["stored_samples"] is True

async def test_rule_check_prints_file_path_reason(tmp_path: object) -> None:
    from pathlib import Path
    assert isinstance(tmp_path, Path)
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps(EXAMPLE_RULE | {"filter": {"field": "caller_number", "op": "~", "value": 1}}))
    result = await _cli("qa", "rule", "check", str(rule))
    assert result.exit_code == 2
    assert f"{rule}: filter.field: unknown field 'caller_number'" in result.output
    rule.write_text(json.dumps(EXAMPLE_RULE))
    assert (await _cli("qa", "rule", "check", str(rule))).exit_code == 0
    assert (await _cli("qa", "commit", "abc")).output.strip().startswith("sha256:ba7816bf")
