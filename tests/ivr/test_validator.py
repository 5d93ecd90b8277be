"""Validator tests: broken flows are refused with the right ``file:line: reason``.

Each case marks the line the problem must point at with a trailing ``#<`` comment.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from config.errors import ConfigFileError
from ivr.flow import ListName
from ivr.loader import load_flow_dir, load_flow_file, validate_flow_dir, validate_flow_file
from tests.ivr.broken_structure import CASES as STRUCTURE_CASES
from tests.ivr.broken_types import CASES as TYPE_CASES
from tests.ivr.helpers import write_prompt

CASES = STRUCTURE_CASES + TYPE_CASES


def _write(tmp_path: Path, text: str) -> tuple[Path, int]:
    body = textwrap.dedent(text).lstrip("\n")
    lines = body.splitlines()
    marked = [number for number, line in enumerate(lines, start=1) if line.rstrip().endswith("#<")]
    assert len(marked) == 1, "each case marks exactly one line"
    path = tmp_path / "flows.yaml"
    path.write_text(body, encoding="utf-8")
    return path, marked[0]


@pytest.fixture
def prompts(prompt_dir: Path) -> Path:
    write_prompt(prompt_dir, "wide", rate=16000, channels=2)
    return prompt_dir


@pytest.mark.parametrize(("text", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_broken_flow_is_refused_with_file_line_reason(tmp_path: Path, prompts: Path, text: str, message: str) -> None:
    path, line = _write(tmp_path, text)
    expected = f"{path}:{line}: {message.replace('{prompt_dir}', str(prompts))}"
    problems = validate_flow_file(path, prompts)
    if "YAML syntax" in message:  # the parser reports where it gave up: the end of the text
        assert len(problems) == 1 and str(problems[0]).startswith(f"{path}:") and message in str(problems[0])
        return
    assert [str(p) for p in problems] == [expected]
    with pytest.raises(ConfigFileError) as info:
        load_flow_file(path, prompts)
    assert str(info.value) == expected


def test_there_are_at_least_fifteen_broken_flows() -> None:
    assert len(CASES) >= 15


def test_every_problem_is_reported_in_one_pass(tmp_path: Path, prompt_dir: Path) -> None:
    path, _ = _write(tmp_path, """
    flows:
      main:
        start: hi
        nodes:
          hi: {type: play, prompts: [hello], next: gone}
          lost: {type: hangup}
          bad: {type: menu, options: {"1": lost}, on_failure: lost}  #<
    """)
    reasons = [p.reason for p in validate_flow_file(path, prompt_dir)]
    assert "node 'hi': unknown target 'gone' in next" in reasons
    assert "menu node 'bad': missing required key 'prompts'" in reasons
    assert "node 'lost' is unreachable from start 'hi'" in reasons
    assert "node 'bad' is unreachable from start 'hi'" in reasons


def test_duplicate_flow_across_files_and_conflicting_types(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(textwrap.dedent("""
        flows:
          main:
            start: s
            nodes:
              s: {type: set, values: {n: 1}, next: bye}
              bye: {type: hangup}
    """).lstrip("\n"))
    (tmp_path / "b.yaml").write_text(textwrap.dedent("""
        flows:
          main:
            start: s
            nodes:
              s: {type: set, values: {n: "one"}, next: bye}
              bye: {type: hangup}
    """).lstrip("\n"))
    problems = [str(p) for p in validate_flow_dir(tmp_path, None)]
    assert f"{tmp_path}/b.yaml:2: duplicate flow 'main' (first defined at {tmp_path}/a.yaml:2)" in problems
    assert f"{tmp_path}/b.yaml:5: variable 'n' is str here but int at {tmp_path}/a.yaml:5" in problems


def test_sub_flows_may_live_in_other_files_and_lists_can_come_from_config(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text(textwrap.dedent("""
        flows:
          main:
            start: s
            nodes:
              s: {type: subflow, flow: vip_check, next: bye}
              bye: {type: hangup}
    """))
    (tmp_path / "vip.yaml").write_text(textwrap.dedent("""
        flows:
          vip_check:
            start: b
            nodes:
              b:
                type: branch
                cases: [{when: {in_list: vip}, goto: t}]
                default: r
              t: {type: tag, vip: true, next: r}
              r: {type: return}
    """))
    with pytest.raises(ConfigFileError, match="unknown list 'vip'"):
        load_flow_dir(tmp_path)
    flow_set = load_flow_dir(tmp_path, extra_lists={"vip": ["1000"]})
    assert set(flow_set.flows) == {"main", "vip_check"} and flow_set.lists[ListName("vip")] == frozenset({"1000"})


def test_good_demo_flow_has_no_problems() -> None:
    repo = Path(__file__).resolve().parents[2]
    assert validate_flow_file(repo / "config/flows/main.yaml", repo / "config/prompts") == []


def test_demo_folder_is_valid_and_a_missing_folder_is_reported(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    assert validate_flow_dir(repo / "config/flows", repo / "config/prompts") == []
    problems = validate_flow_dir(tmp_path / "nope", None)
    assert len(problems) == 1 and problems[0].reason.startswith("cannot read flow folder")


def test_duplicate_keys_are_refused_by_the_yaml_layer(tmp_path: Path) -> None:
    path, line = _write(tmp_path, """
    flows:
      main:
        start: bye
        nodes:
          bye: {type: hangup}
          bye: {type: hangup}  #<
    """)
    assert [str(p) for p in validate_flow_file(path, None)] == [f"{path}:{line}: duplicate key 'bye'"]


def test_a_file_may_hold_only_shared_lists(tmp_path: Path) -> None:
    (tmp_path / "lists.yaml").write_text('lists:\n  vip: ["1000"]\n')
    (tmp_path / "main.yaml").write_text(textwrap.dedent("""
        flows:
          main:
            start: b
            nodes:
              b: {type: branch, cases: [{when: {in_list: vip}, goto: q}], default: q}
              q: {type: queue, queue: support}
    """))
    assert load_flow_dir(tmp_path).lists[ListName("vip")] == frozenset({"1000"})
    (tmp_path / "empty.yaml").write_text("timezone: UTC\n")
    assert [p.reason for p in validate_flow_dir(tmp_path, None)] == [
        "flow file: needs 'flows' (or a 'lists' / 'calendars' section shared with other files)"
    ]
