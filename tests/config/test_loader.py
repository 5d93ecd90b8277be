"""The server configuration: a bad file is refused with file:line: reason for every problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigFileError
from config.loader import check_config, demo_config_path, load_config


def write(tmp: Path, text: str) -> Path:
    path = tmp / "cti.yaml"
    path.write_text(text)
    return path


def test_the_demo_config_is_valid() -> None:
    loaded = load_config(demo_config_path())
    assert [a.id for a in loaded.config.agents] == ["1001", "1002", "1003", "1004"]
    assert loaded.flows_dir.name == "flows" and loaded.config.sip.port == 5060


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("sip:\n  port: 99999\n", 2, "sip.port: Input should be less than or equal to 65535"),
    ("sip:\n  bogus: 1\n", 2, "sip.bogus: Extra inputs are not permitted"),
    ("agents:\n  - id: \"x y\"\n    password: secret1\n", 2, "agents.0.id: agent id may hold"),
    ("agents:\n  - id: a1\n    password: ab\n", 3, "agents.0.password: String should have at least 4"),
    ("agents:\n  - id: a1\n    password: secret1\n    skills: {sales: 11}\n", 4, "level must be 1..10"),
    ("agents:\n  - id: a1\n    password: secret1\n    skills: {\"agent:a2\": 3}\n", 4, "are reserved"),
    ("limits:\n  max_calls_per_second: -1\n", 2, "limits.max_calls_per_second: Input should be greater"),
    ("trunks:\n  - {name: t1, allow: [127.0.0.1], max_calls: -2}\n", 2, "trunks.0.max_calls"),
    ("node: {name: n1}\nnode: {name: n2}\n", 2, "duplicate key 'node'"),
    ("sip: [1, 2\n", 2, "YAML syntax"),
    ("queues:\n  - {name: q1}\nsupervisors:\n  - {id: s1, password: secret1, queues: [q1, nope]}\n", 4,
     "unknown queue 'nope'"),
    ("trunks:\n  - {name: t1}\n", 2, "a trunk needs an 'allow' list"),
    ("media: {rtp_port_min: 3000, rtp_port_max: 2000}\n", 1, "rtp_port_min must be below rtp_port_max"),
    ("- just\n- a list\n", 1, "the configuration must be a mapping"),
    ("node:\n  timezone: Mars/Olympus\n", 2, "unknown time zone 'Mars/Olympus'"),
    ("http:\n  ws_replay_events: 0\n", 2, "http.ws_replay_events: Input should be greater than or equal to 1"),
    ("http:\n  ws_replay_bytes: 4096\n", 2, "http.ws_replay_bytes: Input should be greater than or equal to 1048576"),
    ("desk:\n  pause_reasons: [lunch, Lunch Break]\n", 2, "code 'Lunch Break': lower-case letters"),
    ("desk:\n  dispositions: [sale, sale]\n", 2, "codes repeat: ['sale']"),
    ("desk:\n  dispositions: []\n", 2, "desk.dispositions: offer at least one code"),
    ("desk:\n  pause_reasons:\n    - lunch\n    - {code: coaching, label: {en: Coaching, zh_CN: 辅导}}\n", 4,
     "desk.pause_reasons.1.label: label: 'zh_CN' is not a language tag (like en, zh-CN)"),
    ("desk:\n  dispositions:\n    - code: callback\n      label: {en: '  '}\n", 4,
     "desk.dispositions.0.label: label en: 1 to 40 characters, not blank"),
    ("desk:\n  dispositions:\n    - {code: callback, label: {}}\n", 3, "give at least one language"),
    ("desk:\n  dispositions: [sale, {code: sale, label: Sale}]\n", 2, "codes repeat: ['sale']"),
    ("node:\n  holidays: [2026-10-01, 2026-10-01]\n", 2, "node.holidays: holidays repeat: 2026-10-01"),
    ("node:\n  holidays:\n    - 2026-10-01\n    - 2026-13-01\n", 4, "'2026-13-01' is not a valid date"),
    ("node:\n  holidays: [lunch]\n", 2, "node.holidays.0: Input should be a valid date"),
])
def test_a_bad_file_is_refused_with_file_line_and_reason(tmp_path: Path, text: str, line: int, reason: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigFileError) as caught:
        load_config(path)
    rendered = [str(p) for p in caught.value.problems]
    assert any(r.startswith(f"{path}:{line}: ") and reason in r for r in rendered), rendered
    assert [str(p) for p in check_config(path)] == rendered


def test_every_problem_is_reported_not_only_the_first(tmp_path: Path) -> None:
    path = write(tmp_path, "sip:\n  port: -1\n  realm: 7\nhttp:\n  port: 70000\n")
    lines = sorted(p.line for p in check_config(path))
    assert lines == [2, 3, 5]


def test_an_unreadable_file_is_a_problem_too(tmp_path: Path) -> None:
    problems = check_config(tmp_path / "missing.yaml")
    assert len(problems) == 1 and "cannot read file" in problems[0].reason


def test_desk_codes_with_labels_and_site_holidays(tmp_path: Path) -> None:
    import datetime as dt

    from config.schema import DeskConfig

    path = write(tmp_path, "node:\n  holidays: [2026-10-01, 2026-10-02]\ndesk:\n  pause_reasons:\n    - lunch\n"
                           "    - {code: coaching, label: {en: Coaching, zh-CN: 辅导}}\n"
                           "  dispositions:\n    - {code: callback, label: Call back}\n    - {code: sale}\n")
    config = load_config(path).config
    assert config.node.holidays == (dt.date(2026, 10, 1), dt.date(2026, 10, 2))
    desk = config.desk
    assert DeskConfig.codes_of(desk.pause_reasons) == ("lunch", "coaching")
    assert DeskConfig.labels_of(desk.pause_reasons) == {"coaching": {"en": "Coaching", "zh-CN": "辅导"}}
    assert DeskConfig.codes_of(desk.dispositions) == ("callback", "sale")
    assert DeskConfig.labels_of(desk.dispositions) == {"callback": {"*": "Call back"}}
