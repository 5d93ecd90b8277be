"""Operator commands of the ``cti`` command line: they drive a running node through its admin API.

``cti status``, ``cti agents ...``, ``cti queues ...``, ``cti calls ...`` and ``cti reload``. Every
command takes ``--url`` (env ``CTI_URL``, default ``http://127.0.0.1:8080``), ``--token`` (env
``CTI_TOKEN``) and ``--json`` (print the API's JSON instead of a table). Exit codes: 0 success;
1 server unreachable or request refused (``cti: <code>: <message>`` on stderr); 2 bad usage.
The HTTP client is :class:`cti.cli.http.ApiClient` (aiohttp, bounded by ``--timeout``). See docs/api.md.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import click

from cti.cli.http import DEFAULT_URL, ApiClient, OpsError

F = TypeVar("F", bound=Callable[..., Any])


# ---------------------------------------------------------------------------------- options, output

def common(command: F) -> F:
    """--url, --token, --timeout and --json on a leaf command."""
    options = [
        click.option("--url", envvar="CTI_URL", default=DEFAULT_URL, show_default=True,
                     help="admin API base URL (env CTI_URL)"),
        click.option("--token", envvar="CTI_TOKEN", help="operator token (env CTI_TOKEN)"),
        click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
                     help="seconds to wait for the server"),
        click.option("--json", "as_json", is_flag=True, help="print the API's JSON"),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _call(url: str, token: str | None, timeout: float, method: str, path: str,
          body: dict[str, Any] | None = None) -> Any:
    return ApiClient(url, token, timeout).request(method, path, body)


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k}:{v}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "-"
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Aligned plain-text columns."""
    cells = [list(headers)] + [[_text(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _fields(data: dict[str, Any], keys: Sequence[str]) -> str:
    width = max(len(k) for k in keys)
    return "\n".join(f"{k.ljust(width)}  {_text(data.get(k))}" for k in keys)


def _emit(data: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True) if as_json else human(data))


def _skills(values: Sequence[str]) -> dict[str, int]:
    skills: dict[str, int] = {}
    for value in values:
        name, sep, level = value.partition("=")
        if not sep or not name or not level.strip().isdigit():
            raise click.BadParameter(f"{value!r} is not SKILL=LEVEL (e.g. sales=5)", param_hint="--skill")
        skills[name.strip()] = int(level)
    return skills


_AGENT_KEYS = ("agent_id", "name", "team", "state", "reason", "call_id", "registered", "skills", "queues")
_AGENT_ROW = ("agent_id", "name", "state", "reason", "registered", "skills")
_QUEUE_KEYS = ("queue", "waiting", "longest_wait_seconds", "agents_logged_in", "agents_available", "agents_busy",
               "offered", "answered", "abandoned", "service_level")
_CALL_KEYS = ("call_id", "phase", "caller_number", "caller_name", "dialled_number", "queue", "agent_id", "vip",
              "priority", "recording_serial", "arrived_at", "ivr_inputs")
_CALL_ROW = ("call_id", "phase", "caller_number", "queue", "agent_id", "vip", "recording_serial")


def _agent_text(agent: dict[str, Any]) -> str:
    return _fields(agent, _AGENT_KEYS)


# ---------------------------------------------------------------------------------- status, reload

@click.command("status")
@common
def status(url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """The node's summary: calls, agents by state, queues."""

    def human(s: dict[str, Any]) -> str:
        agents = ", ".join(f"{state} {n}" for state, n in s["agents"].items() if n) or "none"
        refused = ", ".join(f"{reason} {n}" for reason, n in sorted(s["calls"].get("refused", {}).items())) or "none"
        sip = s.get("sip", {})
        head = _fields({"node": s["node"], "version": s["version"], "uptime": f"{s['uptime_seconds']:.0f} s",
                        "calls": f"{s['calls']['active']} active, {s['calls']['total']} total",
                        "refused": refused, "agents": agents,
                        "sip": f"{sip.get('transactions', 0)} transactions, {sip.get('resent', 0)} resent, "
                               f"{sip.get('received_again', 0)} received again"},
                       ("node", "version", "uptime", "calls", "refused", "agents", "sip"))
        rows = [(q.get("queue"), q.get("waiting"), q.get("longest_wait_seconds"), q.get("agents_available"))
                for q in s["queues"]]
        return head + "\n\n" + table(("QUEUE", "WAITING", "LONGEST_WAIT_S", "AVAILABLE"), rows)

    _emit(_call(url, token, timeout, "GET", "/api/v1/status"), as_json, human)


@click.command("reload")
@common
def reload(url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Reload the IVR flows; on errors the running flows stay and each problem is printed."""
    _emit(_call(url, token, timeout, "POST", "/api/v1/config/reload"), as_json,
          lambda r: f"flows reloaded: version {r['flows_version']}")


# ---------------------------------------------------------------------------------- agents

@click.group("agents")
def agents() -> None:
    """Agents: list, show, change state, add, re-skill, remove."""


@agents.command("list")
@common
def agents_list(url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Every agent with its state."""
    _emit(_call(url, token, timeout, "GET", "/api/v1/agents"), as_json,
          lambda d: table([k.upper() for k in _AGENT_ROW], [[a.get(k) for k in _AGENT_ROW] for a in d["agents"]]))


@agents.command("show")
@click.argument("agent_id")
@common
def agents_show(agent_id: str, url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """One agent."""
    _emit(_call(url, token, timeout, "GET", f"/api/v1/agents/{_q(agent_id)}"), as_json, _agent_text)


def _agent_action(name: str, action: str, help_: str, *extra: Callable[[F], F],
                  body: Callable[..., dict[str, Any] | None] = lambda: None) -> None:
    def run(agent_id: str, url: str, token: str | None, timeout: float, as_json: bool, **kwargs: Any) -> None:
        answer = _call(url, token, timeout, "POST", f"/api/v1/agents/{_q(agent_id)}/{action}", body(**kwargs))
        _emit(answer, as_json, lambda a: f"{a['agent_id']}: {a['state']}" + (f" ({a['reason']})"
                                                                            if a.get("reason") else ""))

    run.__doc__ = help_
    command: Any = common(run)
    for option in extra:
        command = option(command)
    agents.command(name)(click.argument("agent_id")(command))


_agent_action("login", "login", "Log an agent in (not ready unless --ready).",
              click.option("--ready", is_flag=True, help="ready at once"), body=lambda ready: {"ready": ready})
_agent_action("ready", "ready", "Make an agent ready.")
_agent_action("not-ready", "not-ready", "Make an agent not ready, with a reason.",
              click.option("--reason", required=True, help="not-ready reason (e.g. break)"),
              body=lambda reason: {"reason": reason})
_agent_action("logout", "logout", "Log an agent out.")
_agent_action("end-wrap-up", "end-wrap-up", "End an agent's after-call work.",
              click.option("--disposition", help="call reason code for the last call"),
              body=lambda disposition: {"disposition": disposition} if disposition else None)

_skill_option = click.option("--skill", "skill", multiple=True, metavar="SKILL=LEVEL",
                             help="a skill and its level 1..10 (repeat)")


@agents.command("add")
@click.argument("agent_id")
@click.option("--name", default="", help="display name")
@click.option("--password", required=True, help="SIP digest password (4+ characters)")
@click.option("--team", help="team name")
@_skill_option
@common
def agents_add(agent_id: str, name: str, password: str, team: str | None, skill: tuple[str, ...], url: str,
               token: str | None, timeout: float, as_json: bool) -> None:
    """Add an agent (in memory: the config file still wins at the next start)."""
    body: dict[str, Any] = {"id": agent_id, "password": password, "skills": _skills(skill)}
    body.update({k: v for k, v in (("name", name), ("team", team)) if v})
    _emit(_call(url, token, timeout, "POST", "/api/v1/agents", body), as_json, _agent_text)


@agents.command("set-skills")
@click.argument("agent_id")
@_skill_option
@common
def agents_set_skills(agent_id: str, skill: tuple[str, ...], url: str, token: str | None, timeout: float,
                      as_json: bool) -> None:
    """Replace an agent's skills (an agent on a call gets them at its next login)."""
    answer = _call(url, token, timeout, "PUT", f"/api/v1/agents/{_q(agent_id)}/skills", {"skills": _skills(skill)})
    _emit(answer, as_json, _agent_text)


@agents.command("remove")
@click.argument("agent_id")
@common
def agents_remove(agent_id: str, url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Remove a logged-out agent."""
    _call(url, token, timeout, "DELETE", f"/api/v1/agents/{_q(agent_id)}")
    _emit({"removed": agent_id}, as_json, lambda d: f"{d['removed']}: removed")


# ---------------------------------------------------------------------------------- queues, calls

@click.group("queues")
def queues() -> None:
    """Queues and their statistics."""


@queues.command("list")
@common
def queues_list(url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Every queue with its figures."""
    keys = _QUEUE_KEYS[:7]
    _emit(_call(url, token, timeout, "GET", "/api/v1/queues"), as_json,
          lambda d: table([k.upper() for k in keys], [[q.get(k) for k in keys] for q in d["queues"]]))


@queues.command("stats")
@click.argument("name")
@common
def queues_stats(name: str, url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """One queue's statistics (today)."""
    _emit(_call(url, token, timeout, "GET", f"/api/v1/queues/{_q(name)}/stats"), as_json,
          lambda q: _fields(q, _QUEUE_KEYS))


@click.group("calls")
def calls() -> None:
    """Live calls."""


@calls.command("list")
@common
def calls_list(url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Every live call."""
    _emit(_call(url, token, timeout, "GET", "/api/v1/calls"), as_json,
          lambda d: table([k.upper() for k in _CALL_ROW], [[c.get(k) for k in _CALL_ROW] for c in d["calls"]]))


@calls.command("show")
@click.argument("call_id")
@common
def calls_show(call_id: str, url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """One live call."""
    _emit(_call(url, token, timeout, "GET", f"/api/v1/calls/{_q(call_id)}"), as_json, lambda c: _fields(c, _CALL_KEYS))


@calls.command("hangup")
@click.argument("call_id")
@common
def calls_hangup(call_id: str, url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Hang a call up."""
    _emit(_call(url, token, timeout, "POST", f"/api/v1/calls/{_q(call_id)}/hangup"), as_json,
          lambda r: f"{r['call_id']}: {r['result']}")


@calls.command("transfer")
@click.argument("call_id")
@click.argument("target")
@common
def calls_transfer(call_id: str, target: str, url: str, token: str | None, timeout: float, as_json: bool) -> None:
    """Transfer a connected call (TARGET is queue:<name> or agent:<id>)."""
    answer = _call(url, token, timeout, "POST", f"/api/v1/calls/{_q(call_id)}/transfer", {"target": target})
    _emit(answer, as_json, lambda r: f"{r['call_id']}: transferred to {r['target']}")


COMMANDS: tuple[click.Command, ...] = (status, agents, queues, calls, reload)
"""What ``cti.cli`` registers: ``for command in COMMANDS: main.add_command(command)``."""

__all__ = ["COMMANDS", "ApiClient", "OpsError", "agents", "calls", "queues", "reload", "status", "table"]
