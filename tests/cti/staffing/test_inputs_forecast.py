"""Invalid inputs and the interval volume file (domain spec §2.4, issue 18 "Bad input")."""

from __future__ import annotations

from typing import Any

import pytest

from acd.config import SlFormula
from cti.staffing import (
    ForecastFileError,
    Model,
    StaffingInput,
    StaffingInputError,
    forecast_to_json,
    parse_forecast,
    plan,
    plan_forecast,
    required_agents,
)

GOOD: dict[str, Any] = {"calls": 100.0, "aht_s": 180.0}


@pytest.mark.parametrize(("change", "field", "text"), [
    ({"aht_s": 0.0}, "aht_s", "must be > 0"),
    ({"aht_s": -5.0}, "aht_s", "must be > 0"),
    ({"shrinkage": 1.0}, "shrinkage", "below 1"),
    ({"shrinkage": -0.1}, "shrinkage", ">= 0"),
    ({"calls": -1.0}, "calls", ">= 0"),
    ({"calls": float("nan")}, "calls", "finite"),
    ({"aht_s": float("inf")}, "aht_s", "finite"),
    ({"interval_s": 0.0}, "interval_s", "> 0"),
    ({"sl_target": 1.0}, "sl_target", "below 1"),
    ({"sl_target": 0.0}, "sl_target", "above 0"),
    ({"answer_within_s": -1.0}, "answer_within_s", ">= 0"),
    ({"max_occupancy": 0.0}, "max_occupancy", "above 0"),
    ({"max_occupancy": 1.5}, "max_occupancy", "at most 1"),
    ({"model": Model.ERLANG_A}, "patience_s", "needs the callers' mean patience"),
    ({"model": Model.ERLANG_A, "patience_s": 0.0}, "patience_s", "> 0"),
    ({"patience_s": 60.0}, "patience_s", "only erlang-a"),
    ({"sl_formula": SlFormula.SHORT_ABANDON_POSITIVE}, "sl_formula", "not defined for staffing"),
    ({"calls": 1e9}, "calls", "at most 20000"),
])
def test_out_of_range_inputs_are_value_errors(change: dict[str, Any], field: str, text: str) -> None:
    with pytest.raises(ValueError, match=text) as caught:
        StaffingInput(**(GOOD | change))
    assert isinstance(caught.value, StaffingInputError) and caught.value.field == field
    assert caught.value.code == "staffing.input_invalid"


def test_given_agents_out_of_range() -> None:
    with pytest.raises(StaffingInputError, match="agents"):
        plan(StaffingInput(**GOOD), -1)


def test_given_agents_below_the_need() -> None:
    result = plan(StaffingInput(**GOOD, shrinkage=0.3), 13)
    assert (result.agents, result.agents_scheduled, result.meets_target, result.limited_by) == (13, 19, False, None)
    assert [f.agents for f in result.what_if] == list(range(10, 17))


def test_json_fields() -> None:
    c = required_agents(StaffingInput(**GOOD)).to_json()
    a = required_agents(StaffingInput(**GOOD, model=Model.ERLANG_A, patience_s=120)).to_json()
    needed = {"traffic_erlangs", "agents", "agents_scheduled", "service_level", "wait_probability", "asa_s",
              "occupancy"}
    assert needed <= set(c) and "abandon_probability" not in c
    assert needed | {"abandon_probability"} <= set(a)
    assert (c["agents"], a["agents"], a["model"]) == (14, 12, "erlang-a")


VOLUME = """interval,calls,aht_s
# Monday
2024-05-06 09:00,100,180

2024-05-06 09:30,360,240
2024-05-06 10:00,0,200
"""


def test_forecast_per_interval() -> None:
    rows = parse_forecast("\ufeff" + VOLUME, "monday.csv")
    assert [(r.interval, r.calls, r.aht_s, r.line) for r in rows] == [
        ("2024-05-06 09:00", 100.0, 180.0, 3), ("2024-05-06 09:30", 360.0, 240.0, 5), ("2024-05-06 10:00", 0.0,
                                                                                      200.0, 6)]
    template = StaffingInput(calls=0, aht_s=1, shrinkage=0.3)
    results = plan_forecast(rows, template, "monday.csv")
    assert [(r.agents, r.agents_scheduled) for r in results] == [(14, 20), (54, 78), (0, 0)]
    out = forecast_to_json(rows, results)
    assert out["peak"] == {"interval": "2024-05-06 09:30", "agents": 54, "agents_scheduled": 78}
    assert out["agent_intervals_scheduled"] == 98 and out["inputs"]["shrinkage"] == 0.3
    assert [i["agents"] for i in out["intervals"]] == [14, 54, 0]


def test_forecast_columns_in_any_order() -> None:
    rows = parse_forecast("AHT_S,Interval,calls\n180,09:00,100\n", "f.csv")
    assert [(r.interval, r.calls, r.aht_s) for r in rows] == [("09:00", 100.0, 180.0)]


@pytest.mark.parametrize(("text", "problems"), [
    ("", ["f.csv:0: empty"]),
    ("interval,calls,aht_s\n", ["f.csv:0: no intervals"]),
    ("interval,calls\n09:00,1\n", ["f.csv:1: the header must name the columns interval, calls, aht_s"]),
    ("interval,calls,aht_s,agents\n", ["f.csv:1: the header must name"]),
    ("interval,calls,aht_s\n09:00,10,180\n09:30,ten,180\n10:00,5,0\n10:30,5\n09:00,1,1\n", [
        "f.csv:3: calls must be a number >= 0, got 'ten'", "f.csv:4: aht_s must be a number of seconds > 0",
        "f.csv:5: 2 fields where the header has 3", "f.csv:6: interval '09:00' is already on line 2"]),
    ("interval,calls,aht_s\n,1,1\n09:00,-1,nan\n", ["f.csv:2: the interval label is empty",
                                                    "f.csv:3: calls must be", "f.csv:3: aht_s must be"]),
    ('interval,calls,aht_s\n"09:00,1,1\n', ["f.csv:2: not valid CSV"]),
])
def test_bad_files_are_refused_with_line_and_reason(text: str, problems: list[str]) -> None:
    with pytest.raises(ForecastFileError) as caught:
        parse_forecast(text, "f.csv")
    got = [str(p) for p in caught.value.problems]
    assert len(got) == len(problems)
    for line, expected in zip(got, problems, strict=True):
        assert line.startswith(expected), (line, expected)
    assert caught.value.code == "staffing.forecast_invalid"


def test_a_load_too_large_is_refused_with_its_line() -> None:
    rows = parse_forecast("interval,calls,aht_s\n09:00,10,180\n09:30,1e9,180\n", "f.csv")
    with pytest.raises(ForecastFileError, match=r"f\.csv:3: calls: the offered load"):
        plan_forecast(rows, StaffingInput(calls=0, aht_s=1), "f.csv")
