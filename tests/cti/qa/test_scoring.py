"""Scorecards: weights, N/A, critical items, deduction forms, amendments and calibration (pure)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from cti.qa import FormInvalidError, ScoresInvalidError
from cti.qa.scoring import calibration_report, parse_form, rescore, score

FORM: dict[str, Any] = {
    "form_id": "INBOUND-STD", "version": 1, "title": "Inbound standard",
    "sections": [
        {"id": "open", "title": "Opening", "weight": 20, "items": [
            {"id": "greet", "text": "Greets with the company name", "type": "yes_no", "max_points": 5},
            {"id": "verify", "text": "Verifies identity", "type": "yes_no", "max_points": 5, "na_allowed": True}]},
        {"id": "solve", "title": "Resolution", "weight": 60, "items": [
            {"id": "answer", "text": "Correct answer", "type": "scale", "max_points": 10,
             "comment_required_on_deduction": True},
            {"id": "privacy", "text": "No data disclosed to a third party", "type": "yes_no", "max_points": 1,
             "critical": True}]},
        {"id": "close", "title": "Closing", "weight": 20, "items": [
            {"id": "recap", "text": "Recaps", "type": "scale", "max_points": 4, "na_allowed": True}]},
    ],
}


def full(**changes: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {"greet": {"points": 5}, "verify": {"points": 5}, "answer": {"points": 10},
                               "privacy": {"points": 1}, "recap": {"points": 4}}
    answers.update(changes)
    return answers


def test_weighted_total_with_na_and_comments() -> None:
    form = parse_form(FORM)
    assert score(form, full()).total == 100.0
    # opening: greet 5/5, verify N/A -> 1.0; resolution: (5 + 1) / 11; closing N/A -> section left out
    result = score(form, full(verify={"na": True}, answer={"points": 5, "comment": "half right"},
                              recap={"na": True}))
    assert result.sections == {"open": 1.0, "solve": pytest.approx(6 / 11), "close": None}
    assert result.total == pytest.approx(round(100 * (20 * 1.0 + 60 * 6 / 11) / 80, 4))
    assert result.items["answer"]["comment"] == "half right" and not result.failed


def test_a_critical_item_zeroes_the_total_and_keeps_the_raw_score() -> None:
    result = score(parse_form(FORM), full(privacy={"points": 0}))
    assert result.failed and result.total == 0.0
    assert result.raw_total == pytest.approx(round(100 * (20 + 60 * 10 / 11 + 20) / 100, 4))


@pytest.mark.parametrize(("answers", "problem"), [
    (full(greet={"points": 3}), "greet.points: 0 or 5"),
    (full(answer={"points": 11}), "answer.points: a number 0..10"),
    (full(answer={"points": 7}), "answer.comment: required when points are deducted"),
    (full(greet={"na": True}), "greet: N/A is not allowed"),
    ({k: v for k, v in full().items() if k != "recap"}, "recap: unanswered"),
    (full(bogus={"points": 1}), "bogus: not an item"),
])
def test_bad_scores_are_refused(answers: dict[str, Any], problem: str) -> None:
    with pytest.raises(ScoresInvalidError) as refused:
        score(parse_form(FORM), answers)
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems


def test_weights_must_add_up_and_unknown_keys_are_refused() -> None:
    bad = copy.deepcopy(FORM)
    bad["sections"][0]["weight"] = 25
    bad["sections"][1]["items"][0]["colour"] = "red"
    with pytest.raises(FormInvalidError) as refused:
        parse_form(bad)
    assert "sections: the weights add up to 105, not 100" in refused.value.problems
    assert "sections[1].items[0].colour: unknown key" in refused.value.problems


def test_deduction_form_with_a_repeat_cap() -> None:
    form = parse_form({"form_id": "KF", "version": 2, "kind": "deduction", "sections": [
        {"id": "s", "items": [{"id": "interrupt", "max_points": 5, "cap": 3},
                              {"id": "rude", "max_points": 50, "critical": True}]}]})
    assert score(form, {"interrupt": {"count": 2}, "rude": {"count": 0}}).total == 90.0
    with pytest.raises(ScoresInvalidError):
        score(form, {"interrupt": {"count": 4}, "rude": {"count": 0}})
    failed = score(form, {"interrupt": {"count": 0}, "rude": {"count": 1}})
    assert failed.failed and failed.total == 0.0 and failed.raw_total == 50.0


def test_rescore_changes_one_item_and_recomputes() -> None:
    form = parse_form(FORM)
    first = score(form, full(answer={"points": 4, "comment": "wrong tariff"}))
    amended = rescore(form, first.items, {"answer": {"points": 8, "comment": "tariff was right"}})
    assert amended.items["greet"] == first.items["greet"]
    assert amended.total == score(form, full(answer={"points": 8, "comment": "x"})).total


def test_calibration_spread_and_outliers() -> None:
    form = parse_form(FORM)
    scored = {
        "sup1": score(form, full(answer={"points": 8, "comment": "c"})),
        "sup2": score(form, full(answer={"points": 8, "comment": "c"})),
        "sup3": score(form, full(answer={"points": 2, "comment": "c"})),  # the same fault, a different deduction
    }
    report = calibration_report(form, scored, tolerance=5.0)
    assert report["items"]["answer"]["spread"] == 6.0
    assert report["items"]["answer"]["agreement"] == pytest.approx(2 / 3, abs=1e-4)
    assert report["items"]["greet"]["spread"] == 0.0 and report["items"]["greet"]["agreement"] == 1.0
    assert report["flagged"] == ["sup3"]
    consensus = score(form, full(answer={"points": 2, "comment": "c"}))
    against = calibration_report(form, scored, tolerance=5.0, consensus=consensus)
    assert against["flagged"] == ["sup1", "sup2"] and against["reference_kind"] == "consensus"
