"""``cti qa``: quality assurance from the command line (docs/qa.md).

Rules (``rule check|publish|list|show|close|samples``), ``verify`` (recompute a closed rule's sample and compare
its digest), ``commit`` (the commitment of a seed you keep), forms, evaluations, the appeal report, calibration and
the library. Every command but ``check``, ``commit`` and ``verify --db`` talks to a running node's admin API with
``--url`` / ``--token`` as the other operator commands (a supervisor's or agent's login token works too). Exit codes:
0 success (for ``verify``: the digests match); 1 refused, unreachable, or ``verify`` found a mismatch; 2 bad usage
or a refused rule/form file (``FILE: path: reason`` per problem on stderr).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from cti.cli.ops import OpsError, _call, _q, _text, common, table
from cti.qa import FormInvalidError, QaError, QaService, RuleInvalidError, commitment, parse_form, parse_rule

__all__ = ["qa"]


def _load(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        click.echo(f"{file}: cannot read: {exc}", err=True)
    except json.JSONDecodeError as exc:
        click.echo(f"{file}:{exc.lineno}: not JSON: {exc.msg}", err=True)
    sys.exit(2)


def _checked_rule(file: Path) -> dict[str, Any]:
    body = _load(file)
    try:
        parse_rule(body)
    except RuleInvalidError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        sys.exit(2)
    return dict(body)


def _echo(data: Any, as_json: bool, human: str) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) if as_json else human)


def _version(version: int | None) -> str:
    return "" if version is None else f"?version={version}"


def _rule_text(r: dict[str, Any]) -> str:
    keys = ("rule_id", "version", "state", "rule_hash", "seed_commitment", "seed", "published_at", "closed_at",
            "days", "selection_digest")
    return "\n".join(f"{k.ljust(16)}  {_text(r.get(k))}" for k in keys)


def _samples_text(items: list[dict[str, Any]]) -> str:
    return table(("AGENT", "DAY", "QUEUE", "RECORDING", "REASON", "ELIGIBLE", "EVALUATOR"),
                 [(i["agent_id"], i["local_date"], i["queue_id"], i["recording_serial"] or "(no sample)", i["reason"],
                   i["eligible"], i["evaluator"]) for i in items])


@click.group("qa")
def qa() -> None:
    """Quality assurance: sampling rules, forms, evaluations, appeals, calibration, library (docs/qa.md)."""


@qa.group("rule")
def rule() -> None:
    """Sampling rules (JSON, versioned, immutable once published)."""


@rule.command("check")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def rule_check(file: Path) -> None:
    """Validate a rule file without a server; print FILE: path: reason per problem."""
    parsed = parse_rule(_checked_rule(file))
    click.echo(f"{file}: OK ({parsed.rule_id} version {parsed.version}, {parsed.start} to {parsed.end})")


@rule.command("publish")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--seed-commitment", help="sha256:<hex> of a seed you keep (see `cti qa commit`); default: the node "
                                        "draws the seed and reveals it at close")
@common
def rule_publish(file: Path, seed_commitment: str | None, url: str, token: str | None, timeout: float,
                 as_json: bool) -> None:
    """Publish a rule version before its period starts; prints its seed commitment."""
    body: dict[str, Any] = {"rule": _checked_rule(file)}
    if seed_commitment:
        body["seed_commitment"] = seed_commitment
    r = _call(url, token, timeout, "POST", "/api/v1/qa/rules", body)
    _echo(r, as_json, _rule_text(r))


@rule.command("list")
@common
def rule_list(url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Every rule version with its state and commitment."""
    r = _call(url, token, timeout, "GET", "/api/v1/qa/rules")
    _echo(r, as_json, table(("RULE", "VERSION", "STATE", "SEED_COMMITMENT", "SELECTION_DIGEST"),
                            [(x["rule_id"], x["version"], x["state"], x["seed_commitment"], x["selection_digest"])
                             for x in r["rules"]]))


@rule.command("show")
@click.argument("rule_id")
@click.option("--version", type=click.IntRange(min=1), help="default: the latest")
@common
def rule_show(rule_id: str, version: int | None, url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """One rule version (the rule itself with --json)."""
    r = _call(url, token, timeout, "GET", f"/api/v1/qa/rules/{_q(rule_id)}{_version(version)}")
    _echo(r, as_json, _rule_text(r))


@rule.command("close")
@click.argument("rule_id")
@click.option("--version", type=click.IntRange(min=1), help="default: the latest")
@click.option("--seed", help="the seed, when you published with --seed-commitment")
@common
def rule_close(rule_id: str, version: int | None, seed: str | None, url: str, token: str | None, timeout: float,
               as_json: bool) -> None:
    """Close the period: reveal the seed, select and store the sample."""
    body: dict[str, Any] = {}
    if version is not None:
        body["version"] = version
    if seed is not None:
        body["seed"] = seed
    r = _call(url, token, timeout, "POST", f"/api/v1/qa/rules/{_q(rule_id)}/close", body)
    _echo(r, as_json, _rule_text(r) + "\n\n" + _samples_text(r["samples"]))


@rule.command("samples")
@click.argument("rule_id")
@click.option("--version", type=click.IntRange(min=1), help="default: the latest")
@common
def rule_samples(rule_id: str, version: int | None, url: str, token: str | None, timeout: float,
                 as_json: bool) -> None:
    """The stored sample of a closed rule ("(no sample)": insufficient calls)."""
    r = _call(url, token, timeout, "GET", f"/api/v1/qa/rules/{_q(rule_id)}/samples{_version(version)}")
    _echo(r, as_json, _samples_text(r["samples"]))


@qa.command("commit")
@click.argument("seed")
def commit(seed: str) -> None:
    """Print sha256:<hex> of SEED, to publish a rule with --seed-commitment and reveal SEED at close."""
    click.echo(commitment(seed))


def _verdict_text(v: dict[str, Any]) -> str:
    lines = [f"{v['rule_id']} version {v['version']}: {'MATCH' if v['match'] else 'MISMATCH'}",
             f"stored digest      {v['stored_digest']}", f"recomputed digest  {v['recomputed_digest']}"]
    lines += [f"  {name.ljust(17)}{'ok' if ok else 'DIFFERS'}" for name, ok in v["checks"].items()]
    return "\n".join(lines)


@qa.command("verify")
@click.argument("rule_id")
@click.option("--version", type=click.IntRange(min=1), help="default: the latest")
@click.option("--db", help="recompute from this database (SQLite file or postgresql:// URL) instead of a server")
@common
def verify(rule_id: str, version: int | None, db: str | None, url: str, token: str | None, timeout: float,
           as_json: bool) -> None:
    """Recompute a closed rule's sample from the records and the revealed seed; exit 1 unless it matches."""
    if db is not None:
        from cti.logging import configure_logging

        configure_logging("warning")  # stdout is the verdict only
        verdict = asyncio.run(_verify_db(db, rule_id, version))
    else:
        verdict = _call(url, token, timeout, "GET", f"/api/v1/qa/rules/{_q(rule_id)}/verify{_version(version)}")
    _echo(verdict, as_json, _verdict_text(verdict))
    if not verdict["match"]:
        sys.exit(1)


async def _verify_db(db: str, rule_id: str, version: int | None) -> dict[str, Any]:
    from cti.store import StoreError, open_store

    try:
        store = await open_store(db)
    except StoreError as exc:
        raise OpsError(f"store: {exc}") from exc
    try:
        return await QaService(store, clock=time.time).verify(rule_id, version)
    except QaError as exc:
        raise OpsError(f"{exc.code}: {exc}") from exc
    finally:
        await store.close()


@qa.group("form")
def form() -> None:
    """Scorecard forms (versioned)."""


@form.command("publish")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@common
def form_publish(file: Path, url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Publish a form version (section weights add up to 100)."""
    body = _load(file)
    try:
        parse_form(body)
    except FormInvalidError as exc:
        for problem in exc.problems:
            click.echo(f"{file}: {problem}", err=True)
        sys.exit(2)
    r = _call(url, token, timeout, "POST", "/api/v1/qa/forms", {"form": body})
    _echo(r, as_json, f"form {r['form_id']} version {r['version']} published")


@form.command("list")
@common
def form_list(url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Every form version."""
    r = _call(url, token, timeout, "GET", "/api/v1/qa/forms")
    _echo(r, as_json, table(("FORM", "VERSION", "TITLE", "BY"),
                            [(f["form_id"], f["version"], f["title"], f["published_by"]) for f in r["forms"]]))


@qa.command("evaluations")
@click.option("--agent", help="one agent's")
@click.option("--evaluator", help="one evaluator's")
@common
def evaluations(agent: str | None, evaluator: str | None, url: str, token: str | None, timeout: float,
                as_json: bool) -> None:
    """Evaluations you may see."""
    query = "&".join(f"{k}={_q(v)}" for k, v in (("agent_id", agent), ("evaluator", evaluator)) if v)
    r = _call(url, token, timeout, "GET", "/api/v1/qa/evaluations" + (f"?{query}" if query else ""))
    _echo(r, as_json, table(("ID", "RECORDING", "AGENT", "EVALUATOR", "FORM", "STATE", "REV", "TOTAL", "FAILED"),
                            [(e["evaluation_id"], e["recording_serial"], e["agent_id"], e["evaluator"],
                              f"{e['form_id']}/{e['form_version']}", e["state"], e["revision"], e["total"],
                              e["failed"]) for e in r["evaluations"]]))


@qa.command("evaluation")
@click.argument("evaluation_id", type=click.IntRange(min=1))
@common
def evaluation(evaluation_id: int, url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """One evaluation: its state (FINAL once settled), appeal deadline, appeals and the audit trail of every
    step."""
    r = _call(url, token, timeout, "GET", f"/api/v1/qa/evaluations/{evaluation_id}")
    steps = [(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(a["at"])), a["action"], a["actor"],
              f"{a['detail'].get('from', '')} -> {a['detail'].get('to', '')}" if "to" in a["detail"] else "")
             for a in r["audit"]]
    deadline = r.get("appeal_deadline")
    text = (_appeal_summary(r) + "\n\nappeal deadline  "
            + ("-" if deadline is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(deadline)))
            + "\n\n" + table(("AT (UTC)", "STEP", "BY", "STATE"), steps))
    _echo(r, as_json, text)


@qa.command("scores")
@common
def scores(url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """QA scores per agent and per evaluator: FINAL evaluations count; the others are shown as provisional."""
    r = _call(url, token, timeout, "GET", "/api/v1/qa/scores/report")
    cols = ("final", "mean", "provisional", "provisional_mean")
    text = "\n\n".join(table((who.upper(), *(c.upper() for c in cols)),
                             [(k, *(_text(v[c]) for c in cols)) for k, v in r[key].items()])
                       for who, key in (("agent", "agents"), ("evaluator", "evaluators")))
    _echo(r, as_json, text)


@qa.command("appeals")
@common
def appeals(url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Appeals per agent and per evaluator, with each evaluator's overturn rate."""
    r = _call(url, token, timeout, "GET", "/api/v1/qa/appeals/report")
    cols = ("filed", "under_review", "rejected_by_leader", "upheld", "overturned", "partial", "withdrawn", "total",
            "overturn_rate")
    text = "\n\n".join(table((who.upper(), *(c.upper() for c in cols)),
                             [(k, *(v[c] for c in cols)) for k, v in r[key].items()])
                       for who, key in (("agent", "agents"), ("evaluator", "evaluators")))
    _echo(r, as_json, text)


def _appeal_summary(r: Any) -> str:
    rows = [(a["appeal_id"], ",".join(a["item_ids"]), a["state"], a.get("leader") or "-",
             " ".join(f"{o['seat']}:{o['verdict']}" for o in a.get("opinions", [])) or "-",
             a.get("decision_rule") or "-") for a in r["appeals"]]
    return (f"evaluation {r['evaluation_id']}: {r['state']}, total {r['total']} (revision {r['revision']})\n\n"
            + table(("APPEAL", "ITEMS", "STATE", "LEADER", "OPINIONS", "RULE"), rows))


@qa.command("admit")
@click.argument("evaluation_id", type=click.IntRange(min=1))
@click.option("--refuse", "reason", metavar="REASON", help="refuse the appeal with this reason (terminal)")
@common
def admit(evaluation_id: int, reason: str | None, url: str, token: str | None, timeout: float,
          as_json: bool) -> None:
    """As the agent's team leader: admit the open appeal to the panel, or refuse it with a reason."""
    body: dict[str, Any] = {"admit": True} if reason is None else {"admit": False, "reason": reason}
    r = _call(url, token, timeout, "POST", f"/api/v1/qa/evaluations/{evaluation_id}/appeal/admission", body)
    _echo(r, as_json, _appeal_summary(r))


@qa.command("opinion")
@click.argument("evaluation_id", type=click.IntRange(min=1))
@click.option("--verdict", type=click.Choice(["uphold", "overturn", "partial"]), required=True)
@click.option("--points", "points_json", default="{}", metavar="JSON",
              help='proposed answers of appealed items, e.g. \'{"answer": {"points": 8, "comment": "..."}}\'')
@click.option("--comment", default="")
@common
def opinion(evaluation_id: int, verdict: str, points_json: str, comment: str, url: str, token: str | None,
            timeout: float, as_json: bool) -> None:
    """As a panel member: record your opinion on the open appeal (the third one decides)."""
    try:
        points = json.loads(points_json)
    except json.JSONDecodeError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint="--points") from None
    if not isinstance(points, dict):
        raise click.BadParameter("an object of item id to answer", param_hint="--points")
    r = _call(url, token, timeout, "POST", f"/api/v1/qa/evaluations/{evaluation_id}/appeal/opinions",
              {"verdict": verdict, "points": points, "comment": comment})
    _echo(r, as_json, _appeal_summary(r))


@qa.command("calibration")
@click.argument("serial")
@click.option("--tolerance", type=click.FloatRange(0, 100),
              help="points from the reference that flag an evaluator (default: the node's qa.calibration_tolerance)")
@click.option("--consensus", type=click.IntRange(min=1), help="the evaluation id holding the consensus score")
@common
def calibration(serial: str, tolerance: float | None, consensus: int | None, url: str, token: str | None,
                timeout: float, as_json: bool) -> None:
    """Spread per item and per evaluator of a recording's calibration scores."""
    params = [f"tolerance={tolerance:g}"] if tolerance is not None else []
    params += [f"consensus={consensus}"] if consensus else []
    query = "?" + "&".join(params) if params else ""
    r = _call(url, token, timeout, "GET", f"/api/v1/qa/calibration/{_q(serial)}{query}")
    items = table(("ITEM", "MIN", "MAX", "SPREAD", "AGREEMENT"),
                  [(k, v["min"], v["max"], v["spread"], v["agreement"]) for k, v in r["items"].items()])
    people = table(("EVALUATOR", "TOTAL", "DISTANCE", "FLAGGED"),
                   [(k, v["total"], v["distance"], v["flagged"]) for k, v in r["evaluators"].items()])
    _echo(r, as_json, f"reference ({r['reference_kind']}) {r['reference']}, tolerance {r['tolerance']:g}\n\n"
                      f"{items}\n\n{people}")


@qa.command("library")
@click.option("--state", type=click.Choice(["nominated", "published", "rejected", "retired"]))
@common
def library(state: str | None, url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Good-call library entries."""
    r = _call(url, token, timeout, "GET", "/api/v1/qa/library" + (f"?state={state}" if state else ""))
    _echo(r, as_json, table(("ID", "RECORDING", "STATE", "TAGS", "NOTE", "NOMINATED_BY"),
                            [(e["entry_id"], e["recording_serial"], e["state"], e["tags"], e["note"],
                              e["nominated_by"]) for e in r["entries"]]))
