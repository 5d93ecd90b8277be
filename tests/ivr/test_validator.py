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
from tests.ivr.helpers import write_prompt

OK_TAIL = """
      bye: {type: hangup}
"""

CASES: list[tuple[str, str, str]] = [
    (
        "unknown node type",
        """
        flows:
          main:
            start: hi
            nodes:
              hi: {type: playy, prompts: [hello], next: bye}  #<
              bye: {type: hangup}
        """,
        "node 'hi': unknown node type 'playy' (known: branch, callback, collect, hangup, lookup, menu, play, "
        "queue, return, set, subflow, tag, transfer, voicemail)",
    ),
    (
        "unknown target",
        """
        flows:
          main:
            start: hi
            nodes:
              hi:
                type: play
                prompts: [hello]
                next: nowhere  #<
        """,
        "node 'hi': unknown target 'nowhere' in next",
    ),
    (
        "unknown menu option target",
        """
        flows:
          main:
            start: m
            nodes:
              m:
                type: menu
                prompts: [menu]
                options:
                  "1": bye
                  "2": sales  #<
                on_failure: bye
              bye: {type: hangup}
        """,
        "node 'm': unknown target 'sales' in options.2",
    ),
    (
        "unknown start",
        """
        flows:
          main:
            start: begin  #<
            nodes:
              bye: {type: hangup}
        """,
        "flow 'main': unknown start node 'begin'",
    ),
    (
        "unreachable node",
        """
        flows:
          main:
            start: bye
            nodes:
              bye: {type: hangup}
              orphan: {type: hangup}  #<
        """,
        "node 'orphan' is unreachable from start 'bye'",
    ),
    (
        "loop without input wait",
        """
        flows:
          main:
            start: a
            nodes:
              a: {type: play, prompts: [hello], next: b}  #<
              b:
                type: branch
                cases: [{when: {var: caller, op: eq, value: "1"}, goto: bye}]
                default: a
              bye: {type: hangup}
        """,
        "loop a -> b -> a never waits for caller input (add a menu or collect, or break the loop)",
    ),
    (
        "loop whose only exit leads back",
        """
        flows:
          main:
            start: m
            nodes:
              m:  #<
                type: menu
                prompts: [menu]
                options: {"1": bye}
                on_failure: sorry
              sorry: {type: play, prompts: [invalid], next: m}
              bye: {type: hangup}
        """,
        "loop m -> sorry -> m has no bounded exit: on_failure of 'm' leads back into the loop",
    ),
    (
        "menu without prompts",
        """
        flows:
          main:
            start: m
            nodes:
              m:  #<
                type: menu
                options: {"1": bye}
                on_failure: bye
              bye: {type: hangup}
        """,
        "menu node 'm': missing required key 'prompts'",
    ),
    (
        "empty prompt list",
        """
        flows:
          main:
            start: hi
            nodes:
              hi:
                type: play
                prompts: []  #<
                next: bye
              bye: {type: hangup}
        """,
        "play node 'hi': 'prompts' needs at least one prompt",
    ),
    (
        "missing prompt file",
        """
        flows:
          main:
            start: hi
            nodes:
              hi:
                type: play
                prompts:
                  - hello
                  - nosuch  #<
                next: bye
              bye: {type: hangup}
        """,
        "missing prompt 'nosuch': no file {prompt_dir}/nosuch.wav",
    ),
    (
        "prompt in the wrong audio format",
        """
        flows:
          main:
            start: hi
            nodes:
              hi: {type: play, prompts: [wide], next: bye}  #<
              bye: {type: hangup}
        """,
        "prompt 'wide': wide.wav must be 8000 Hz mono 16-bit PCM, got 16000 Hz, 2 channel(s), 16-bit",
    ),
    (
        "condition compares an int variable with a string",
        """
        flows:
          main:
            start: crm
            nodes:
              crm:
                type: lookup
                url: "http://crm/{caller}"
                result: {open_tickets: {path: tickets, type: int}}
                next: route
                on_error: bye
              route:
                type: branch
                cases:
                  - when: {var: open_tickets, op: eq, value: "3"}  #<
                    goto: bye
                default: bye
              bye: {type: hangup}
        """,
        "condition: variable 'open_tickets' is int, cannot compare with str '3'",
    ),
    (
        "ordering operator on a string variable",
        """
        flows:
          main:
            start: route
            nodes:
              route:
                type: branch
                cases:
                  - when:
                      var: caller  #<
                      op: gt
                      value: 5
                    goto: bye
                default: bye
              bye: {type: hangup}
        """,
        "condition: 'gt' compares integers; 'caller' is str and the value is int",
    ),
    (
        "unknown variable in a condition",
        """
        flows:
          main:
            start: route
            nodes:
              route:
                type: branch
                cases: [{when: {var: tier, op: eq, value: gold}, goto: bye}]  #<
                default: bye
              bye: {type: hangup}
        """,
        "condition: unknown variable 'tier' (no node sets it)",
    ),
    (
        "unknown operator",
        """
        flows:
          main:
            start: route
            nodes:
              route:
                type: branch
                cases:
                  - when: {var: caller, op: like, value: "5*"}  #<
                    goto: bye
                default: bye
              bye: {type: hangup}
        """,
        "condition: unknown operator 'like' (known: eq, ne, lt, le, gt, ge, in, matches, exists)",
    ),
    (
        "unknown number list",
        """
        lists:
          vip: ["1000"]
        flows:
          main:
            start: route
            nodes:
              route:
                type: branch
                cases:
                  - when: {in_list: vips}  #<
                    goto: bye
                default: bye
              bye: {type: hangup}
        """,
        "condition: unknown list 'vips' (known: vip)",
    ),
    (
        "unknown calendar",
        """
        flows:
          main:
            start: route
            nodes:
              route:
                type: branch
                cases:
                  - when: {business_hours: office}  #<
                    goto: bye
                default: bye
              bye: {type: hangup}
        """,
        "condition: unknown calendar 'office'",
    ),
    (
        "menu option that is not a key",
        """
        flows:
          main:
            start: m
            nodes:
              m:
                type: menu
                prompts: [menu]
                options:
                  "12": bye  #<
                on_failure: bye
              bye: {type: hangup}
        """,
        "menu node 'm': option '12' must be one key: 0-9, * or #",
    ),
    (
        "collect lengths reversed",
        """
        flows:
          main:
            start: c
            nodes:
              c:
                type: collect
                prompts: [enter]
                variable: pin
                min_length: 5  #<
                max_length: 3
                next: bye
                on_failure: bye
              bye: {type: hangup}
        """,
        "collect node 'c': min_length 5 is greater than max_length 3",
    ),
    (
        "misspelt key",
        """
        flows:
          main:
            start: m
            nodes:
              m:
                type: menu
                prompts: [menu]
                options: {"1": bye}
                timout: 5  #<
                on_failure: bye
              bye: {type: hangup}
        """,
        "menu node 'm': unknown key 'timout'",
    ),
    (
        "retries out of range",
        """
        flows:
          main:
            start: m
            nodes:
              m:
                type: menu
                prompts: [menu]
                options: {"1": bye}
                retries: 9  #<
                on_failure: bye
              bye: {type: hangup}
        """,
        "menu node 'm': 'retries' must be between 0 and 5, got 9",
    ),
    (
        "unknown sub-flow",
        """
        flows:
          main:
            start: s
            nodes:
              s:
                type: subflow
                flow: identify  #<
                next: bye
              bye: {type: hangup}
        """,
        "node 's': unknown flow 'identify'",
    ),
    (
        "sub-flow recursion",
        """
        flows:
          main:  #<
            start: s
            nodes:
              s: {type: subflow, flow: other, next: bye}
              bye: {type: hangup}
          other:
            start: s
            nodes:
              s: {type: subflow, flow: main, next: back}
              back: {type: return}
        """,
        "sub-flow recursion: main -> other -> main",
    ),
    (
        "unquoted number in a list",
        """
        lists:
          vip:
            - "1000"
            - 5550100  #<
        flows:
          main:
            start: bye
            nodes:
              bye: {type: hangup}
        """,
        "list 'vip': entry 5550100 must be a quoted string (YAML reads unquoted digits as a number and drops "
        "leading zeros)",
    ),
    (
        "unknown placeholder in a template",
        """
        flows:
          main:
            start: t
            nodes:
              t:
                type: transfer
                number: "{caller.name}"  #<
        """,
        "unknown placeholder {caller.name} (use {caller}, {called} or {vars.NAME})",
    ),
    (
        "assigning a built-in variable",
        """
        flows:
          main:
            start: s
            nodes:
              s:
                type: set
                values:
                  caller: "1234"  #<
                next: bye
              bye: {type: hangup}
        """,
        "cannot assign built-in variable 'caller'",
    ),
    (
        "calendar in an unknown time zone",
        """
        calendars:
          office:
            timezone: Mars/Olympus  #<
            hours: {weekdays: ["09:00-17:00"]}
        flows:
          main:
            start: bye
            nodes:
              bye: {type: hangup}
        """,
        "calendar 'office': unknown time zone 'Mars/Olympus'",
    ),
    (
        "calendar interval backwards",
        """
        calendars:
          office:
            timezone: UTC
            hours:
              weekdays:
                - "22:00-06:00"  #<
        flows:
          main:
            start: bye
            nodes:
              bye: {type: hangup}
        """,
        "calendar 'office': interval '22:00-06:00' must be 'HH:MM-HH:MM' with start before end (split a night "
        "shift at 24:00)",
    ),
    (
        "unquoted no read as a boolean",
        """
        flows:
          main:
            start: m
            nodes:
              m:
                type: menu
                prompts: [menu]
                options: {"1": bye}
                on_failure: no  #<
              bye: {type: hangup}
        """,
        "menu node 'm': 'on_failure' must be a string, got bool (YAML reads yes/no/on/off as booleans: quote it)",
    ),
    (
        "YAML syntax error",
        """
        flows:
          main:
            start: bye
            nodes: [unclosed  #<
        """,
        "YAML syntax: expected ',' or ']', but got '<stream end>'",
    ),
]


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
