"""The OpenAPI 3.1 description of the admin API (served at ``GET /api/v1/openapi.json``).

Kept by hand next to :mod:`cti.api`; ``tests/cti/test_api.py`` checks that every aiohttp route has
an entry here and every entry a route.
"""

from __future__ import annotations

from typing import Any

JSON = "application/json"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


_GUARD_TEXTS = {
    408: "the HTTP guard's deadline passed: header_timeout (request head) or body_timeout (body)",
    413: "the HTTP guard refused the body: body_too_large (over http.max_body_bytes or http.max_json_bytes)",
    415: "the HTTP guard refused the body: unsupported_encoding (a Content-Encoding other than identity)",
    503: "the HTTP guard is full: too_many_connections (answered before the request is read)",
}
"""The HTTP guard's refusals (cti/http_guard), possible on every route before its handler runs."""


def _guard_errors() -> dict[str, Any]:
    return {str(s): _json(_ref("Error"), text) for s, text in _GUARD_TEXTS.items()}


def _errors(*statuses: int) -> dict[str, Any]:
    texts = {400: "bad JSON (bad_json, json_too_deep: nested deeper than http.max_json_depth), unknown field "
                  "or wrong field type", 401: "missing or wrong bearer token",
             403: "no operator token configured (api_disabled)", 404: "unknown agent, queue or call",
             409: "refused by the ACD (code names the reason)", 422: "the new configuration is invalid",
             501: "not available on this node"}
    return {**_guard_errors(), **{str(s): _json(_ref("Error"), texts[s]) for s in (401, 403, *statuses)}}


def _op(summary: str, ok: dict[str, Any], *errors: int, body: dict[str, Any] | None = None,
        params: tuple[str, ...] = (), status: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {status: ok, **_errors(*errors)}}
    if params:
        op["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                            for p in params]
    if body is not None:
        op["requestBody"] = {"required": False, "content": {JSON: {"schema": body}}}
    return op


def _obj(required: tuple[str, ...] = (), **props: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required), "additionalProperties": False}


_STR = {"type": "string"}
_SKILLS = {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1, "maximum": 10}}
_AGENT_OK = _json(_ref("Agent"), "the agent after the change")
_A = ("agent_id",)
_C = ("call_id",)


def _agent_op(summary: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"post": _op(summary, _AGENT_OK, 400, 404, 409, body=body, params=_A)}


_NUM = {"type": "number"}
_NUM_OR_NULL = {"type": ["number", "null"]}
_STAFFING_FIGURES = {
    "agents": {"type": "integer"}, "agents_scheduled": {"type": "integer"}, "service_level": _NUM_OR_NULL,
    "wait_probability": _NUM, "asa_s": _NUM_OR_NULL, "occupancy": _NUM_OR_NULL, "queue_length": _NUM_OR_NULL,
    "understaffed": {"type": "boolean"}, "abandon_probability": _NUM_OR_NULL,
    "abandon_within_t_probability": _NUM_OR_NULL}
_STAFFING_QUERY = {"calls": _NUM, "aht_s": _NUM, "interval_s": _NUM, "sl_target": _NUM, "answer_within_s": _NUM,
                   "patience_s": _NUM, "shrinkage": _NUM, "max_occupancy": _NUM, "agents": {"type": "integer"},
                   "what_if": {"type": "integer"}, "model": {"enum": ["erlang-c", "erlang-a"]},
                   "sl_formula": {"enum": ["abandons_after_t_negative", "abandons_negative", "answered_only"]}}
_STAFFING_400 = _json(_ref("Error"), "a parameter is unknown, not a number or out of range (field names it), "
                                     "or the volume file was refused (problems: file, line, reason)")


def _query(*names: str, required: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [{"name": n, "in": "query", "required": n in required, "schema": _STAFFING_QUERY[n]} for n in names]


STAFFING_PATHS: dict[str, Any] = {
    "/api/v1/staffing": {"get": {
        "summary": "required agents for one interval (Erlang C or A), or the figures of `agents` (docs/staffing.md)",
        "parameters": _query(*_STAFFING_QUERY, required=("calls", "aht_s")),
        "responses": {"200": _json({"type": "object", "properties": {
            "model": _STR, "traffic_erlangs": _NUM, **_STAFFING_FIGURES, "meets_target": {"type": "boolean"},
            "limited_by": {"type": ["string", "null"]}, "inputs": {"type": "object"},
            "what_if": {"type": "array", "items": {"type": "object", "properties": _STAFFING_FIGURES}}}},
            "the answer"), "400": _STAFFING_400, **_errors()}}},
    "/api/v1/staffing/forecast": {"post": {
        "summary": "required agents per interval of a CSV volume file (interval,calls,aht_s) sent as the body",
        "parameters": _query(*(n for n in _STAFFING_QUERY if n not in ("calls", "aht_s", "agents", "what_if"))),
        "requestBody": {"required": True, "content": {"text/csv": {"schema": _STR}}},
        "responses": {"200": _json({"type": "object", "properties": {
            "model": _STR, "inputs": {"type": "object"},
            "intervals": {"type": "array", "items": {"type": "object", "properties": {
                "interval": _STR, "calls": _NUM, "aht_s": _NUM, "traffic_erlangs": _NUM, **_STAFFING_FIGURES}}},
            "peak": {"type": "object"}, "agent_intervals_scheduled": {"type": "integer"}}},
            "one object per interval"), "400": _STAFFING_400, **_errors()}}},
}
"""The staffing routes (cti/staffing_routes.py), mounted by ``cti.api.build_app`` (tests/cti/test_api.py checks
that the document and build_app's routes are the same set)."""


_REPORT_QUERY = [
    {"name": "from", "in": "query", "required": True, "schema": _STR,
     "description": "first day (YYYY-MM-DD, the site's local day), today, or an ISO time (local when it has "
                    "no offset)"},
    {"name": "to", "in": "query", "required": True, "schema": _STR,
     "description": "last day (inclusive) or an ISO time (exclusive); after from, at most reports.max_range_days"},
    {"name": "interval", "in": "query", "required": False,
     "schema": {"enum": ["15m", "30m", "60m", "day", "week", "month"], "default": "30m"}},
    {"name": "format", "in": "query", "required": False, "schema": {"enum": ["json", "csv", "svg"], "default": "json"}},
    {"name": "figure", "in": "query", "required": False, "schema": _STR,
     "description": "svg: the figure charted (service_level, answer_rate, abandon_rate, asa_s, aht_s, offered, "
                    "answered, abandoned, longest_wait_s, occupancy, utilisation, transfer_rate)"},
    {"name": "group", "in": "query", "required": False, "schema": {"type": "array", "items": _STR},
     "description": "svg: the queues/agents/teams charted (repeatable; default all, at most 8)"},
]
_TARGET_GAP = {"type": "object", "properties": {"target": _NUM, "actual": _NUM_OR_NULL, "gap": _NUM_OR_NULL,
                                                "met": {"type": ["boolean", "null"]},
                                                "direction": {"enum": ["at_least", "at_most"]}}}
REPORT_PATHS: dict[str, Any] = {
    "/api/v1/reports/{kind}": {"get": {
        "summary": "KPI report per queue (kind=queues) or per agent and team (kind=agents) and interval, from the "
                   "records (docs/reports.md)",
        "parameters": [{"name": "kind", "in": "path", "required": True, "schema": {"enum": ["queues", "agents"]}},
                       *_REPORT_QUERY],
        "responses": {
            "200": {"description": "the report: JSON (rows of group, interval, figures, targets), CSV or SVG chart",
                    "content": {JSON: {"schema": {"type": "object", "properties": {
                        "kind": _STR, "from": _STR, "to": _STR, "timezone": _STR, "interval": _STR,
                        "attribution": _STR, "generated_at": _STR,
                        "rows": {"type": "array", "items": {"type": "object", "properties": {
                            "group": _STR, "interval": _STR, "start": _NUM, "end": _NUM,
                            "figures": {"type": "object"},
                            "targets": {"type": "object", "additionalProperties": _TARGET_GAP}}}}}}},
                                "text/csv": {"schema": _STR}, "image/svg+xml": {"schema": _STR}}},
            "400": _json(_ref("Error"), "reports.input_invalid (from not before to, a range over "
                                        "reports.max_range_days, a bad interval, format, figure or group; field "
                                        "names it) or unknown_parameter"),
            "503": _json(_ref("Error"), "reports_busy: the report took longer than 60 s, or the HTTP guard is full"),
            **{k: v for k, v in _errors().items() if k != "503"}}}},
}
"""The report routes (cti/report_routes.py), mounted by the server next to build_app's (they need the store)."""


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "cti-server admin API", "version": "1"},
    "security": [{"bearer": []}],
    "paths": {
        "/healthz": {"get": {"summary": "liveness (open)", "security": [],
                             "responses": {"200": _json(_obj(status=_STR, node=_STR, calls={"type": "integer"}),
                                                        "the node is up"), **_guard_errors()}}},
        "/metrics": {"get": {"summary": "Prometheus text exposition 0.0.4 (open)", "security": [],
                             "responses": {"200": {"description": "metrics",
                                                   "content": {"text/plain": {"schema": _STR}}},
                                           **_guard_errors()}}},
        "/api/v1/openapi.json": {"get": _op("this document", _json({"type": "object"}, "OpenAPI 3.1"))},
        "/api/v1/status": {"get": _op("node summary", _json(_ref("Status"), "the node's summary"))},
        "/api/v1/agents": {
            "get": _op("every agent", _json(_obj(agents={"type": "array", "items": _ref("Agent")}), "agents")),
            "post": _op("add an agent (in memory until restart)", _json(_ref("Agent"), "the new agent"),
                        400, 409, 501, status="201",
                        body=_obj(("id", "password"), id=_STR, name=_STR, password=_STR, skills=_SKILLS,
                                  team=_STR)),
        },
        "/api/v1/agents/{agent_id}": {
            "get": _op("one agent", _json(_ref("Agent"), "the agent"), 404, params=_A),
            "delete": _op("remove a logged-out agent", {"description": "removed"}, 404, 409, 501,
                          params=_A, status="204"),
        },
        "/api/v1/agents/{agent_id}/skills": {
            "put": _op("replace the agent's skills", _AGENT_OK, 400, 404, 409, 501, params=_A,
                       body=_obj(("skills",), skills=_SKILLS)),
        },
        "/api/v1/agents/{agent_id}/login": _agent_op("log in", _obj(ready={"type": "boolean"})),
        "/api/v1/agents/{agent_id}/ready": _agent_op("set ready"),
        "/api/v1/agents/{agent_id}/not-ready": _agent_op("set not ready", _obj(reason=_STR)),
        "/api/v1/agents/{agent_id}/logout": _agent_op("log out"),
        "/api/v1/agents/{agent_id}/end-wrap-up": _agent_op("end after-call work", _obj(disposition=_STR)),
        "/api/v1/queues": {
            "get": _op("every queue", _json(_obj(queues={"type": "array", "items": _ref("QueueStats")}), "queues")),
        },
        "/api/v1/queues/{queue}/stats": {
            "get": _op("one queue's statistics", _json(_ref("QueueStats"), "the queue"), 404, params=("queue",)),
        },
        "/api/v1/calls": {
            "get": _op("live calls", _json(_obj(calls={"type": "array", "items": _ref("Call")}), "calls")),
        },
        "/api/v1/calls/{call_id}": {"get": _op("one live call", _json(_ref("Call"), "the call"), 404, params=_C)},
        "/api/v1/calls/{call_id}/hangup": {
            "post": _op("hang the call up", _json(_ref("CallResult"), "hanging up"), 400, 404, 409, params=_C),
        },
        "/api/v1/calls/{call_id}/transfer": {
            "post": _op("transfer to queue:<name> or agent:<id>", _json(_ref("CallResult"), "transferred"),
                        400, 404, 409, params=_C, body=_obj(("target",), target=_STR)),
        },
        "/api/v1/config/reload": {
            "post": _op("reload the IVR flows", _json(_obj(flows_version={"type": "integer"}), "new flows"),
                        400, 422, 501),
        },
        **STAFFING_PATHS,
        **REPORT_PATHS,
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": _STR, "message": _STR,
                               "problems": {"type": "array", "items": _obj(file=_STR, line={"type": "integer"},
                                                                           reason=_STR)}}}}},
            "Agent": {"type": "object", "properties": {
                "agent_id": _STR, "name": _STR, "team": {"type": ["string", "null"]}, "state": _STR,
                "reason": {"type": ["string", "null"]}, "since": {"type": ["number", "null"]},
                "call_id": {"type": ["string", "null"]}, "registered": {"type": "boolean"}, "skills": _SKILLS,
                "queues": {"type": "array", "items": _STR}}},
            "Call": {"type": "object", "properties": {
                "call_id": _STR, "phase": _STR, "caller_number": {"type": ["string", "null"]},
                "caller_name": {"type": ["string", "null"]}, "dialled_number": {"type": ["string", "null"]},
                "queue": {"type": ["string", "null"]}, "agent_id": {"type": ["string", "null"]},
                "vip": {"type": "boolean"}, "priority": {"type": "integer"},
                "recording_serial": {"type": ["string", "null"]}, "arrived_at": {"type": ["number", "null"]},
                "ivr_inputs": {"type": "object"}, "crm": {"type": "object"}}},
            "CallResult": _obj(call_id=_STR, result=_STR, target=_STR),
            "QueueStats": {"type": "object", "properties": {
                "queue": _STR, "waiting": {"type": "integer"}, "longest_wait_seconds": {"type": "number"},
                "agents_logged_in": {"type": "integer"}, "agents_available": {"type": "integer"},
                "agents_busy": {"type": "integer"},
                "agents_offering": {"type": "integer"}, "offered": {"type": "integer"}, "answered": {"type": "integer"},
                "abandoned": {"type": "integer"}, "service_level": {"type": ["number", "null"]},
                "asa_seconds": {"type": ["number", "null"]}, "window_seconds": {"type": "integer"}}},
            "Status": {"type": "object", "properties": {
                "node": _STR, "version": _STR, "uptime_seconds": {"type": "number"},
                "calls": _obj(active={"type": "integer"}, total={"type": "integer"},
                              refused={"type": "object", "additionalProperties": {"type": "integer"}}),
                "sip": _obj(resent={"type": "integer"}, received_again={"type": "integer"},
                            transactions={"type": "integer"}),
                "agents": {"type": "object", "additionalProperties": {"type": "integer"}},
                "queues": {"type": "array", "items": _ref("QueueStats")}}},
        },
    },
}



__all__ = ["OPENAPI", "REPORT_PATHS", "STAFFING_PATHS"]
