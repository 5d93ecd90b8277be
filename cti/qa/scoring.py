"""Scorecards (domain.md §4.1): versioned forms, scoring with N/A and critical items, and calibration.

- :func:`parse_form` validates a form's JSON. ``kind`` ``weighted``: sections carry weights that must add up to
  100, items earn points out of ``max_points``; ``deduction`` (扣分制): each item is a fixed deduction of
  ``max_points`` per occurrence, up to ``cap`` occurrences, and the total is ``max(0, 100 - Σ deductions)``.
- :func:`score` checks an evaluator's answers against the form and computes the total: ``group = Σ earned /
  Σ max`` over the section's applicable (non-N/A) items (None when all are N/A), ``total = Σ w·group / Σ w`` over
  applicable sections × 100. A ``critical`` item not given full points fails the evaluation: ``total`` 0,
  ``failed`` true, ``raw_total`` kept for analytics. Earned points are kept per item so that an appeal can correct
  one item and recompute the total the same way.
- :func:`calibration_report`: several evaluators' scores of one recording against a reference (the consensus when
  given, else the median): spread per item and per evaluator; a distance over ``tolerance`` flags the evaluator.
Pure: no I/O, no clock.
"""

from __future__ import annotations

import enum
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cti.qa.errors import FormInvalidError, ScoresInvalidError

__all__ = ["Form", "FormKind", "Item", "ItemType", "ScoreResult", "Section", "calibration_report", "parse_form",
           "score"]

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_WEIGHT_TOTAL = 100.0
_EPS = 1e-6


class FormKind(enum.Enum):
    WEIGHTED = "weighted"
    DEDUCTION = "deduction"


class ItemType(enum.Enum):
    YES_NO = "yes_no"  # 0 or max_points
    SCALE = "scale"  # 0..max_points
    DEDUCTION = "deduction"  # occurrences 0..cap, each worth max_points off


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    item_id: str
    text: str
    type: ItemType
    max_points: float
    na_allowed: bool
    critical: bool
    comment_required_on_deduction: bool
    cap: int
    help: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Section:
    section_id: str
    title: str
    weight: float
    items: tuple[Item, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Form:
    form_id: str
    version: int
    title: str
    kind: FormKind
    sections: tuple[Section, ...]
    source: Mapping[str, Any]

    def items(self) -> dict[str, Item]:
        return {i.item_id: i for s in self.sections for i in s.items}


@dataclass(frozen=True, slots=True, kw_only=True)
class ScoreResult:
    items: dict[str, dict[str, Any]]  # item_id -> {"earned": float | None, "max", "na", "count"?, "comment"?}
    sections: dict[str, float | None]  # section_id -> group score in 0..1 (None: all N/A)
    total: float | None
    raw_total: float | None
    failed: bool

    def to_json(self) -> dict[str, Any]:
        return {"items": self.items, "sections": self.sections, "total": self.total, "raw_total": self.raw_total,
                "failed": self.failed}


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def parse_form(obj: Any) -> Form:
    """Validate a form's JSON.

    Raises:
        FormInvalidError: every problem, each ``path: reason`` (weights that do not add up to 100, unknown keys,
            duplicate ids, ...).
    """
    problems: list[str] = []
    if not isinstance(obj, dict):
        raise FormInvalidError(["form: a JSON object"])
    for key in sorted(set(obj) - {"form_id", "version", "title", "kind", "sections"}):
        problems.append(f"{key}: unknown key")
    form_id: Any = obj.get("form_id")
    version: Any = obj.get("version", 1)
    if not isinstance(form_id, str) or not _ID.match(form_id):
        problems.append("form_id: 1-64 letters, digits, '.', '_' or '-'")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append("version: a positive integer")
    title = obj.get("title", "")
    if not isinstance(title, str):
        problems.append("title: a text")
    kind_raw = obj.get("kind", "weighted")
    if kind_raw not in {k.value for k in FormKind}:
        problems.append("kind: weighted or deduction")
        kind_raw = "weighted"
    kind = FormKind(kind_raw)
    sections_raw = obj.get("sections")
    sections: list[Section] = []
    seen: set[str] = set()
    if not isinstance(sections_raw, list) or not sections_raw:
        problems.append("sections: a non-empty list")
        sections_raw = []
    for si, s in enumerate(sections_raw):
        path = f"sections[{si}]"
        if not isinstance(s, dict):
            problems.append(f"{path}: an object {{id, title, weight, items}}")
            continue
        for key in sorted(set(s) - {"id", "title", "weight", "items"}):
            problems.append(f"{path}.{key}: unknown key")
        sid: Any = s.get("id")
        weight: Any = s.get("weight", 0 if kind is FormKind.DEDUCTION else None)
        if not isinstance(sid, str) or not _ID.match(sid) or sid in seen:
            problems.append(f"{path}.id: a unique id")
        seen.add(str(sid))
        if not _num(weight) or weight < 0:
            problems.append(f"{path}.weight: a number >= 0")
            weight = 0
        items: list[Item] = []
        items_raw = s.get("items")
        if not isinstance(items_raw, list) or not items_raw:
            problems.append(f"{path}.items: a non-empty list")
            items_raw = []
        for ii, it in enumerate(items_raw):
            ipath = f"{path}.items[{ii}]"
            if not isinstance(it, dict):
                problems.append(f"{ipath}: an object")
                continue
            known = {"id", "text", "type", "max_points", "na_allowed", "critical", "comment_required_on_deduction",
                     "cap", "help"}
            for key in sorted(set(it) - known):
                problems.append(f"{ipath}.{key}: unknown key")
            iid: Any = it.get("id")
            mx: Any = it.get("max_points")
            if not isinstance(iid, str) or not _ID.match(iid) or iid in seen:
                problems.append(f"{ipath}.id: a unique id (items and sections share one namespace)")
            seen.add(str(iid))
            default_type = "deduction" if kind is FormKind.DEDUCTION else "scale"
            t = it.get("type", default_type)
            if t not in {x.value for x in ItemType}:
                problems.append(f"{ipath}.type: yes_no, scale or deduction")
                t = default_type
            itype = ItemType(t)
            if (kind is FormKind.DEDUCTION) != (itype is ItemType.DEDUCTION):
                problems.append(f"{ipath}.type: a {kind.value} form has "
                                + ("only deduction items" if kind is FormKind.DEDUCTION else "no deduction items"))
            if not _num(mx) or mx <= 0:
                problems.append(f"{ipath}.max_points: a number > 0")
                mx = 1
            cap: Any = it.get("cap", 1)
            if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
                problems.append(f"{ipath}.cap: a positive integer")
                cap = 1
            flags = {f: it.get(f, False) for f in ("na_allowed", "critical", "comment_required_on_deduction")}
            for f, v in flags.items():
                if not isinstance(v, bool):
                    problems.append(f"{ipath}.{f}: true or false")
            items.append(Item(item_id=str(iid), text=str(it.get("text", "")), type=itype, max_points=float(mx),
                              na_allowed=flags["na_allowed"] is True, critical=flags["critical"] is True,
                              comment_required_on_deduction=flags["comment_required_on_deduction"] is True,
                              cap=cap, help=str(it.get("help", ""))))
        sections.append(Section(section_id=str(sid), title=str(s.get("title", "")), weight=float(weight),
                                items=tuple(items)))
    if kind is FormKind.WEIGHTED and sections:
        total = sum(s.weight for s in sections)
        if abs(total - _WEIGHT_TOTAL) > _EPS:
            problems.append(f"sections: the weights add up to {total:g}, not {_WEIGHT_TOTAL:g}")
    if problems:
        raise FormInvalidError(problems)
    assert isinstance(form_id, str) and isinstance(version, int)
    return Form(form_id=form_id, version=version, title=str(title), kind=kind, sections=tuple(sections),
                source=dict(obj) | {"version": version, "kind": kind.value})


def score(form: Form, answers: Any) -> ScoreResult:
    """Check ``answers`` (``{item_id: {"points": n} | {"count": n} | {"na": true}, "comment"?: text}``) and
    compute the result. Every item must be answered.

    Raises:
        ScoresInvalidError: every problem, each ``item_id: reason``.
    """
    problems: list[str] = []
    if not isinstance(answers, dict):
        raise ScoresInvalidError(["scores: an object of item id to answer"])
    items = form.items()
    for extra in sorted(set(answers) - set(items)):
        problems.append(f"{extra}: not an item of {form.form_id} version {form.version}")
    out: dict[str, dict[str, Any]] = {}
    for item_id, item in items.items():
        a = answers.get(item_id)
        if not isinstance(a, dict):
            problems.append(f"{item_id}: unanswered")
            continue
        for key in sorted(set(a) - {"points", "count", "na", "comment"}):
            problems.append(f"{item_id}.{key}: unknown key")
        comment = a.get("comment")
        if comment is not None and (not isinstance(comment, str) or len(comment) > 2000):
            problems.append(f"{item_id}.comment: a text of at most 2000 characters")
        if a.get("na") is True:
            if not item.na_allowed:
                problems.append(f"{item_id}: N/A is not allowed for this item")
            out[item_id] = {"earned": None, "max": item.max_points, "na": True, "comment": comment}
            continue
        if item.type is ItemType.DEDUCTION:
            count: Any = a.get("count")
            if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= item.cap:
                problems.append(f"{item_id}.count: an integer 0..{item.cap}")
                continue
            deducted, earned = count > 0, item.max_points * count
            out[item_id] = {"earned": earned, "max": item.max_points, "na": False, "count": count,
                            "comment": comment}
        else:
            points: Any = a.get("points")
            ok = _num(points) and 0 <= points <= item.max_points
            if ok and item.type is ItemType.YES_NO:
                ok = points in (0, item.max_points)
            if not ok:
                want = (f"0 or {item.max_points:g}" if item.type is ItemType.YES_NO
                        else f"a number 0..{item.max_points:g}")
                problems.append(f"{item_id}.points: {want}")
                continue
            deducted, earned = points < item.max_points, float(points)
            out[item_id] = {"earned": earned, "max": item.max_points, "na": False, "comment": comment}
        if deducted and item.comment_required_on_deduction and not (comment or "").strip():
            problems.append(f"{item_id}.comment: required when points are deducted")
    if problems:
        raise ScoresInvalidError(problems)
    return _total(form, out)


def _total(form: Form, out: dict[str, dict[str, Any]]) -> ScoreResult:
    sections: dict[str, float | None] = {}
    failed = False
    for s in form.sections:
        applicable = [(out[i.item_id], i) for i in s.items if not out[i.item_id]["na"]]
        for a, i in applicable:
            lost = a["earned"] > 0 if i.type is ItemType.DEDUCTION else a["earned"] < i.max_points
            failed = failed or (i.critical and lost)
        if form.kind is FormKind.DEDUCTION:
            sections[s.section_id] = sum(a["earned"] for a, _ in applicable)  # points deducted
        else:
            most = sum(i.max_points for _, i in applicable)
            sections[s.section_id] = None if not applicable else sum(a["earned"] for a, _ in applicable) / most
    if form.kind is FormKind.DEDUCTION:
        raw: float | None = max(0.0, 100.0 - sum(v or 0.0 for v in sections.values()))
    else:
        used = [(s.weight, sections[s.section_id]) for s in form.sections if sections[s.section_id] is not None]
        weight = sum(w for w, _ in used)
        raw = None if not used or weight <= 0 else round(100.0 * sum(w * (g or 0.0) for w, g in used) / weight, 4)
    total = 0.0 if failed and raw is not None else raw
    return ScoreResult(items=out, sections=sections, total=total, raw_total=raw, failed=failed)


def rescore(form: Form, items: Mapping[str, Mapping[str, Any]], corrections: Mapping[str, Any]) -> ScoreResult:
    """An earlier result with some items answered again (an amended appeal); the total is recomputed.

    Raises:
        ScoresInvalidError: a correction that does not fit the form.
    """
    answers: dict[str, Any] = {}
    for item_id, it in items.items():
        if it.get("na"):
            answers[item_id] = {"na": True}
        elif "count" in it:
            answers[item_id] = {"count": it["count"]}
        else:
            answers[item_id] = {"points": it["earned"]}
        if it.get("comment"):
            answers[item_id]["comment"] = it["comment"]
    for item_id in corrections:
        if item_id not in answers:
            raise ScoresInvalidError([f"{item_id}: not an item of this evaluation"])
    return score(form, answers | dict(corrections))


def calibration_report(form: Form, scored: Mapping[str, ScoreResult], *, tolerance: float = 5.0,
                       consensus: ScoreResult | None = None) -> dict[str, Any]:
    """Spread of several evaluators' scores of one recording.

    ``scored`` maps evaluator -> result. The reference total is ``consensus`` when given, else the median of the
    totals (one outlier does not drag it). Per item: min, max, spread, agreement (share of evaluators giving the most
    common answer). Per evaluator: total, ``distance`` = |total - reference|, ``flagged`` when over ``tolerance``.
    """
    evaluators = sorted(scored)
    totals = {e: scored[e].raw_total for e in evaluators}
    known = [t for t in totals.values() if t is not None]
    reference = (consensus.raw_total if consensus is not None else
                 (statistics.median(known) if known else None))
    items: dict[str, Any] = {}
    for item_id in form.items():
        values = [scored[e].items[item_id]["earned"] for e in evaluators]
        given = [v for v in values if v is not None]
        if not given:
            items[item_id] = {"min": None, "max": None, "spread": None, "agreement": None, "na": len(values)}
            continue
        common = max(given.count(v) for v in given)
        items[item_id] = {"min": min(given), "max": max(given), "spread": max(given) - min(given),
                          "stdev": round(statistics.pstdev(given), 4), "agreement": round(common / len(values), 4),
                          "na": len(values) - len(given)}
    per_evaluator = {}
    for e in evaluators:
        t = totals[e]
        distance = None if t is None or reference is None else round(abs(t - reference), 4)
        per_evaluator[e] = {"total": t, "distance": distance,
                            "flagged": distance is not None and distance > tolerance}
    spread = (max(known) - min(known)) if known else None
    return {"reference": reference, "reference_kind": "consensus" if consensus is not None else "median",
            "tolerance": tolerance, "spread": spread, "items": items, "evaluators": per_evaluator,
            "flagged": [e for e in evaluators if per_evaluator[e]["flagged"]]}


def item_ids(form: Form) -> Sequence[str]:
    return list(form.items())
