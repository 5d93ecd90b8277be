"""``cti events``: tail a running node's live event stream in the terminal (docs/api.md, docs/websocket.md).

The command asks the admin API for an operator WebSocket token (``POST /api/v1/tokens`` with the operator token of
``--token`` / ``CTI_TOKEN``), opens ``/ws`` with the ``websockets`` package and prints every event whose type matches
``--type`` (``call.offered``, ``call.*`` or ``*``; repeatable; default everything), one line each: a readable line,
or with ``--json`` the envelope itself (one JSON object per line, for ``jq`` and scripts).

When the connection drops (network, node restart, slow consumer, token expiry) it reconnects with back-off and
``?since=<seq>`` of the last event it saw, so nothing is missed or repeated; when the node cannot replay the gap it
answers ``resync`` and the command says on stderr that events were lost. ``--since SEQ`` starts from an earlier
event still in the node's replay window; ``--count N`` exits after N events.

Exit codes: 0 after ``--count`` events or Ctrl-C; 1 the node cannot be reached at the start, or refuses the token;
2 bad usage. :class:`EventTail` is the pure part (frames in, lines out); :func:`tail` is the asyncio loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, TextIO

import click
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from cti.cli.http import DEFAULT_URL, ApiClient, OpsError

__all__ = ["EventTail", "TypeFilter", "events", "tail"]

_BACKOFF_MIN_S: Final = 0.5
_BACKOFF_MAX_S: Final = 10.0
_MAX_FRAME: Final = 4 * 1024 * 1024
_SUBJECT: Final = "cti-events"


@dataclass(frozen=True, slots=True)
class TypeFilter:
    """Event type patterns: ``a.b`` exactly, ``a.*`` a family, ``*`` everything (the bus's syntax)."""

    exact: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    everything: bool = True

    @classmethod
    def parse(cls, patterns: Iterable[str]) -> TypeFilter:
        """Raises: click.BadParameter: a pattern is not ``a.b``, ``a.*`` or ``*``."""
        exact, prefixes, everything, seen = set(), [], False, False
        for pattern in patterns:
            seen = True
            if pattern == "*":
                everything = True
            elif pattern.endswith(".*") and pattern[:-2] and "*" not in pattern[:-2]:
                prefixes.append(pattern[:-1])
            elif pattern and "*" not in pattern:
                exact.add(pattern)
            else:
                raise click.BadParameter(f"{pattern!r}: use a type (call.offered), a family (call.*) or *",
                                         param_hint="--type")
        return cls(frozenset(exact), tuple(prefixes), everything or not seen)

    def matches(self, event_type: str) -> bool:
        return self.everything or event_type in self.exact or event_type.startswith(self.prefixes)


def _clock_text(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) + f".{int(ts * 1000) % 1000:03d}"


def _value(value: object) -> str:
    if isinstance(value, str):
        return value if value and " " not in value else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class EventTail:
    """The command's state: the last ``seq`` seen, what to print. Frames in, ``(stdout lines, stderr lines)`` out."""

    types: TypeFilter
    as_json: bool = False
    since: int | None = None
    printed: int = 0
    node: str | None = field(default=None)

    def url(self, base: str, token: str) -> str:
        """The ``/ws`` URL for ``base`` (http[s]://host:port), with ``since`` once known."""
        parts = urllib.parse.urlsplit(base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        query = {"token": token, **({"since": str(self.since)} if self.since is not None else {})}
        return urllib.parse.urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ws",
                                        urllib.parse.urlencode(query), ""))

    def receive(self, raw: str | bytes) -> tuple[list[str], list[str]]:
        """Handle one frame from the node."""
        try:
            frame = json.loads(raw)
        except ValueError:
            return [], ["cti: the node sent a frame that is not JSON; ignored"]
        if not isinstance(frame, dict):
            return [], []
        kind, data = frame.get("type"), frame.get("data")
        if kind == "hello" and isinstance(data, dict):
            resumed, node = bool(data.get("resumed")), data.get("node")
            note = []
            if self.since is not None and not resumed:
                note = [f"cti: the node could not replay what came after seq {self.since}; events were lost"]
            if isinstance(data.get("seq"), int) and (self.since is None or not resumed):
                self.since = data["seq"]
            self.node = node if isinstance(node, str) else self.node
            return [], note
        if kind in ("resync", "reply", "error"):
            return [], []
        if not isinstance(kind, str) or not isinstance(data, dict):
            return [], []
        if isinstance(frame.get("seq"), int):
            self.since = frame["seq"]
        if not self.types.matches(kind):
            return [], []
        self.printed += 1
        if self.as_json:
            return [json.dumps(frame, ensure_ascii=False, separators=(",", ":"))], []
        ts = frame.get("ts")
        when = _clock_text(float(ts)) if isinstance(ts, int | float) else "?"
        fields = " ".join(f"{key}={_value(value)}" for key, value in data.items())
        return [f"{when} {kind} {fields}".rstrip()], []


def _write(stream: TextIO, lines: list[str]) -> None:
    for line in lines:
        stream.write(line + "\n")
    if lines:
        stream.flush()


async def _token(api: ApiClient) -> str:
    """An operator WebSocket token from the admin API. Raises: OpsError."""
    issued = await asyncio.to_thread(api.request, "POST", "/api/v1/tokens", {"role": "operator", "subject": _SUBJECT})
    if not isinstance(issued, dict) or not isinstance(issued.get("token"), str):
        raise OpsError(f"the server at {api.url} did not issue a token (is it a cti server?)")
    return str(issued["token"])


async def tail(state: EventTail, api: ApiClient, *, count: int | None = None, out: TextIO = sys.stdout,
               err: TextIO = sys.stderr, rand: Callable[[], float] = random.random) -> None:
    """Print events until ``count`` were printed (forever without it), reconnecting with ``since``.

    Raises:
        OpsError: the node cannot be reached before the first connection, or it refuses the token.
    """
    token = await _token(api)
    delay, connected_once = _BACKOFF_MIN_S, False
    while True:
        try:
            async with connect(state.url(api.url, token), subprotocols=[Subprotocol("cti.json")],
                               max_size=_MAX_FRAME, open_timeout=api.timeout, proxy=None) as ws:
                if connected_once:
                    _write(err, [f"cti: reconnected, resuming after seq {state.since}"])
                connected_once, delay = True, _BACKOFF_MIN_S
                async for message in ws:
                    lines, notes = state.receive(message)
                    _write(err, notes)
                    for line in lines:
                        _write(out, [line])
                        if count is not None and state.printed >= count:
                            return
            _write(err, ["cti: the node closed the connection; reconnecting"])
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403) and connected_once:
                token = await _token(api)  # expired: a new one, then resume
                continue
            raise OpsError(f"the node refused the WebSocket (HTTP {status})") from exc
        except ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == 4001:
                token = await _token(api)
                continue
            _write(err, [f"cti: connection lost ({exc.rcvd.code if exc.rcvd else 'no close frame'}); reconnecting"])
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            if not connected_once:
                raise OpsError(f"cannot open the event stream at {api.url}: {exc}") from exc
        await asyncio.sleep(delay * (0.5 + rand() / 2))
        delay = min(_BACKOFF_MAX_S, delay * 2)
        if connected_once:
            with contextlib.suppress(OpsError):  # the node may still be away: keep the token we have
                token = await _token(api)


@click.command("events")
@click.option("--url", envvar="CTI_URL", default=DEFAULT_URL, show_default=True,
              help="admin API base URL (env CTI_URL)")
@click.option("--token", envvar="CTI_TOKEN", help="operator token (env CTI_TOKEN)")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="seconds to wait for the server at each connection")
@click.option("--type", "types", multiple=True, metavar="PATTERN",
              help="event types to show: call.offered, call.*, * (repeatable; default all)")
@click.option("--json", "as_json", is_flag=True, help="print each event's envelope as one JSON line")
@click.option("--since", type=click.IntRange(min=0), help="start after this seq (still in the node's replay window)")
@click.option("--count", type=click.IntRange(min=1), help="exit after this many events")
def events(url: str, token: str | None, timeout: float, types: tuple[str, ...], as_json: bool, since: int | None,
           count: int | None) -> None:
    """Tail the node's live events (reconnects and resumes with since)."""
    state = EventTail(TypeFilter.parse(types), as_json=as_json, since=since)
    api = ApiClient(url, token, timeout)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(tail(state, api, count=count))
