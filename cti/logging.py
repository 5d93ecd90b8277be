"""structlog configuration for the server.

Two renderers: ``console`` (coloured key=value, for a person at a terminal) and ``json``
(one object per line, for log shippers). Event names are fixed dotted strings
(``<package>.<noun>.<past-verb>``); details go in keys, never in the text.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from types import ModuleType
from typing import Literal

import structlog

LogFormat = Literal["console", "json"]

_REDACTED_KEYS = frozenset({"authorization", "proxy_authorization", "password", "secret", "token"})


def _redact(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    """Never let credentials reach a log line, whatever a caller passes in."""
    for key in list(event_dict):
        if key.lower() in _REDACTED_KEYS:
            event_dict[key] = "***"
    return event_dict


# The call a log line is about, set around each call's work (cheaper than structlog's
# bound_contextvars, which is measurable on the call path) and added to every line by a processor.
CALL_ID: ContextVar[str | None] = ContextVar("cti_call_id", default=None)


class call_context:  # noqa: N801 - used like a function: ``with call_context(call_id):``
    """Log lines written inside the block carry ``call_id`` (a ContextVar: per task, nestable)."""

    __slots__ = ("_call_id", "_token")

    def __init__(self, call_id: str) -> None:
        self._call_id = call_id

    def __enter__(self) -> None:
        self._token = CALL_ID.set(self._call_id)

    def __exit__(self, *exc: object) -> None:
        CALL_ID.reset(self._token)


def _add_call_id(
    _logger: object, _method: str, event_dict: structlog.types.EventDict
) -> structlog.types.EventDict:
    call_id = CALL_ID.get()
    if call_id is not None:
        event_dict.setdefault("call_id", call_id)
    return event_dict


def configure_logging(level: str = "info", fmt: LogFormat = "console") -> None:
    """Configure structlog (and the stdlib root logger it feeds) once per process."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: structlog.types.Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            _add_call_id,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,  # once per process (cti serve): the loggers are built once
    )
    logging.basicConfig(level=numeric, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")


_OWN_PACKAGES = ("cti", "sip", "acd", "ivr", "config")


def bind_module_loggers(modules: dict[str, ModuleType | None] | None = None) -> int:
    """Replace the module-level loggers of the project's imported modules by the loggers they stand for.

    ``structlog.get_logger()`` returns a lazy proxy: every call through it (``log.info(...)``) looks the
    logger up again in Python, about 1.4 µs, even when the level filters the line out, and the call path
    makes dozens of such calls per call. Once :func:`configure_logging` has run, the proxy would only ever
    return the same logger (``cache_logger_on_first_use``), so a node binds them all once, at start-up
    (``cti serve`` only: a process that reconfigures structlog later, as tests do, must keep the proxies).
    Modules imported afterwards keep theirs, which stay correct; the node calls it again once started for
    those. The bound loggers are also one-time objects made at start-up rather than by the first traffic,
    which may be a flood (docs/reliability.md, "What stays after the drain"). Returns how many were bound.
    """
    proxy_type = type(structlog.get_logger())
    bound = 0
    for name, module in list((sys.modules if modules is None else modules).items()):
        if module is None or name.split(".", 1)[0] not in _OWN_PACKAGES:
            continue
        for attr, value in list(vars(module).items()):
            if type(value) is proxy_type:
                setattr(module, attr, value.bind())
                bound += 1
    return bound
