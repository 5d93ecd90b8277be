"""The HTTP listener's guard: connection caps, read deadlines, body and JSON limits, answer headers, refusal logs.

:func:`cti.http.api.build_app` puts an :class:`HttpGuard` in the application; :func:`serve_http` binds it
(docs/api.md "The HTTP listener"). Handlers read JSON bodies with :func:`read_json` and answer refusals with
:func:`refusal_response` so that the guard counts and logs them with their code.
"""

from cti.http.guard.aio import (
    HTTP_GUARD_KEY,
    REFUSAL_KEY,
    SERVER_NAME,
    GuardedSite,
    GuardStats,
    HttpGuard,
    Refusal,
    body_refusal,
    read_json,
    refusal_response,
    serve_http,
)
from cti.http.guard.limits import BodyError, CloseReason, ConnectionPhase, ReadDeadlines, RefusalLog, parse_json

__all__ = [
    "HTTP_GUARD_KEY", "REFUSAL_KEY", "SERVER_NAME", "BodyError", "CloseReason", "ConnectionPhase", "GuardStats",
    "GuardedSite", "HttpGuard", "ReadDeadlines", "Refusal", "RefusalLog", "body_refusal", "parse_json", "read_json",
    "refusal_response", "serve_http",
]
