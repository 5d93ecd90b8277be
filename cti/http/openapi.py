"""The OpenAPI 3.1 description of the admin API (served at ``GET /api/v1/openapi.json``).

Kept by hand next to :mod:`cti.http.api`; ``tests/cti/test_api.py`` checks that every aiohttp route has
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
"""The staffing routes (cti/staffing/routes.py), mounted by ``cti.http.api.build_app`` (tests/cti/test_api.py checks
that the document and build_app's routes are the same set)."""

_ISO = {"type": "string", "description": "ISO 8601; in requests without an offset: site time (node.timezone)"}
_ACTIVITY = {"enum": ["shift", "phone", "break", "lunch", "meeting", "training", "offline_work", "leave", "absence"]}
_ENTRY = {"type": "object", "properties": {
    "entry_id": {"type": "integer"}, "agent_id": _STR, "activity": _ACTIVITY,
    "start": _ISO, "end": _ISO, "start_ts": _NUM, "end_ts": _NUM, "note": {"type": ["string", "null"]}}}
_ENTRY_BODY = _obj(("agent_id", "activity", "start", "end"), agent_id=_STR, activity=_ACTIVITY,
                   start=_ISO, end=_ISO, note={"type": ["string", "null"]})
_APPROVED = {"type": "object", "properties": {
    "exception_id": {"type": "integer"}, "agent_id": _STR, "activity": {"type": ["string", "null"]},
    "start": _ISO, "end": _ISO, "start_ts": _NUM, "end_ts": _NUM, "reason": _STR, "approved_by": _STR,
    "approved_at": _ISO}}
_APPROVED_BODY = _obj(("agent_id", "start", "end", "reason", "approved_by"), agent_id=_STR, start=_ISO, end=_ISO,
                      reason=_STR, approved_by=_STR,
                      activity={"type": ["string", "null"], "description": "override activity; null: excused"})


def _days_query(*extra: str) -> list[dict[str, Any]]:
    days = [{"name": "from", "in": "query", "required": True, "schema": {"type": "string", "format": "date"}},
            {"name": "to", "in": "query", "required": False, "schema": {"type": "string", "format": "date"}}]
    return days + [{"name": n, "in": "query", "required": False, "schema": _STR} for n in extra]


def _adh(summary: str, ok: dict[str, Any], *, params: tuple[str, ...] = (), query: list[dict[str, Any]] | None = None,
         body: dict[str, Any] | None = None, body_type: str = JSON, status: str = "200",
         bad: str = "bad parameter or body; adherence.schedule_invalid (overlap, outside a shift); "
                    "adherence.range_invalid (from after to, or over adherence.report_max_days)") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {
        status: ok, "400": _json(_ref("Error"), bad), "404": _json(_ref("Error"), "no such entry or exception"),
        "501": _json(_ref("Error"), "not_available: no store on this node"), **_errors()}}
    parameters = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}} for p in params]
    parameters += query or []
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": {body_type: {"schema": body}}}
    return op


ADHERENCE_PATHS: dict[str, Any] = {
    "/api/v1/schedules": {
        "get": _adh("schedule entries overlapping the local days from..to (at most 62 days)",
                    _json(_obj(timezone=_STR, entries={"type": "array", "items": _ENTRY}), "entries"),
                    query=_days_query("agent")),
        "post": _adh("add one schedule entry (checked against the agent's plan)", _json(_ENTRY, "the entry"),
                     body=_ENTRY_BODY, status="201"),
    },
    "/api/v1/schedules/import": {
        "post": _adh("import a CSV or iCalendar schedule file sent as the body: all of it or nothing",
                     _json(_obj(file=_STR, agents={"type": "integer"}, imported={"type": "integer"},
                                replaced={"type": "integer"}), "imported"),
                     query=[{"name": "name", "in": "query", "required": False, "schema": _STR},
                            {"name": "agent", "in": "query", "required": False, "schema": _STR}],
                     body=_STR, body_type="text/plain",
                     bad="adherence.import_invalid: problems lists file, line and reason; nothing was stored"),
    },
    "/api/v1/schedules/{entry_id}": {
        "put": _adh("change one schedule entry (same id)", _json(_ENTRY, "the entry"), params=("entry_id",),
                    body=_ENTRY_BODY),
        "delete": _adh("remove one schedule entry (a shift only once its activities are gone)",
                       {"description": "removed"}, params=("entry_id",), status="204"),
    },
    "/api/v1/adherence/approved-exceptions": {
        "get": _adh("supervisor-approved exceptions overlapping the local days from..to",
                    _json(_obj(timezone=_STR, exceptions={"type": "array", "items": _APPROVED}), "exceptions"),
                    query=_days_query("agent")),
        "post": _adh("approve an exception: the span is read as the override activity, or excused (in adherence)",
                     _json(_APPROVED, "the exception"), body=_APPROVED_BODY, status="201"),
    },
    "/api/v1/adherence/approved-exceptions/{exception_id}": {
        "delete": _adh("withdraw an approved exception", {"description": "withdrawn"}, params=("exception_id",),
                       status="204"),
    },
    "/api/v1/adherence/live": {
        "get": _adh("every scheduled agent's adherence now",
                    _json(_obj(timezone=_STR, at=_ISO, agents={"type": "array", "items": {"type": "object"}}),
                          "agents")),
    },
    "/api/v1/adherence/report": {
        "get": _adh("adherence, conformance and exceptions per agent per day, the key minority, gaming flags",
                    _json({"type": "object"}, "the report (docs/adherence.md)"), query=_days_query("agent")),
    },
}
"""The schedule and adherence routes (cti/adherence/routes.py), mounted by ``cti.http.api.build_app``."""


_QA_ERRORS = {"400": "bad input: unknown field, bad parameter, or a refused rule/form/scores (problems: path: reason)",
              "401": "no token, or a bad or expired one", "403": "this principal may not do this (qa.forbidden, "
              "qa.reviewer_is_evaluator, qa.reviewer_is_nominator, qa.calibration_blind, ...)",
              "404": "unknown, or not visible to this principal",
              "409": "not allowed in this state (qa.rule_published, qa.period_open, qa.period_started, "
                     "qa.bad_transition, qa.appeal_window_closed, qa.seed_mismatch, ...)",
              "416": "the range is outside the audio"}
_OBJ = {"type": "object"}


def _qa(summary: str, *errors: int, params: tuple[str, ...] = (), query: tuple[str, ...] = (),
        body: dict[str, Any] | None = None, status: str = "200", audio: bool = False) -> dict[str, Any]:
    ok: dict[str, Any] = ({"description": "the audio (RFC 9110 range requests: 206 with Content-Range)",
                           "content": {"audio/wav": {"schema": {"type": "string", "format": "binary"}}}}
                          if audio else _json(_OBJ, "the answer"))
    responses = {status: ok, **_guard_errors(),
                 **{str(e): _json(_ref("Error"), _QA_ERRORS[str(e)]) for e in (401, *errors)}}
    if audio:
        responses["206"] = ok
    op: dict[str, Any] = {"summary": summary, "responses": responses}
    parameters = [{"name": p, "in": "path", "required": True, "schema": _STR} for p in params]
    parameters += [{"name": q, "in": "query", "required": False, "schema": _STR} for q in query]
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = {"required": True, "content": {JSON: {"schema": body}}}
    return op


QA_PATHS: dict[str, Any] = {
    "/api/v1/qa/rules": {
        "get": _qa("every sampling rule version: commitment, revealed seed, digests (docs/qa.md)"),
        "post": _qa("publish a rule version before its period (the node draws the seed unless seed_commitment "
                    "is given)", 400, 403, 409, status="201",
                    body=_obj(("rule",), rule=_OBJ, seed_commitment=_STR))},
    "/api/v1/qa/rules/{rule_id}": {"get": _qa("one rule version (latest by default)", 404, params=("rule_id",),
                                              query=("version",))},
    "/api/v1/qa/rules/{rule_id}/close": {"post": _qa(
        "close the period: reveal the seed, store the sample, its digests and the evaluators", 400, 403, 404, 409,
        params=("rule_id",), body=_obj(version={"type": "integer"}, seed=_STR))},
    "/api/v1/qa/rules/{rule_id}/samples": {"get": _qa("the stored sample (an agent sees its own items)", 404,
                                                      params=("rule_id",), query=("version",))},
    "/api/v1/qa/rules/{rule_id}/verify": {"get": _qa(
        "recompute the sample from the records and the revealed seed: match true/false and each check", 404, 409,
        params=("rule_id",), query=("version",))},
    "/api/v1/qa/assignments": {"get": _qa("sampled calls assigned to the calling supervisor (or ?evaluator=)",
                                          400, 403, query=("evaluator",))},
    "/api/v1/qa/forms": {
        "get": _qa("every scorecard form version"),
        "post": _qa("publish a form version (weights add up to 100)", 400, 403, 409, status="201",
                    body=_obj(("form",), form=_OBJ))},
    "/api/v1/qa/forms/{form_id}": {"get": _qa("one form version (latest by default)", 404, params=("form_id",),
                                              query=("version",))},
    "/api/v1/qa/evaluations": {
        "get": _qa("evaluations the principal may see", query=("agent_id", "evaluator", "recording_serial")),
        "post": _qa("score a recording with a form version (published, or a blind calibration score)",
                    400, 403, 404, 409, status="201",
                    body=_obj(("recording_serial", "form_id", "scores"), recording_serial=_STR, form_id=_STR,
                              form_version={"type": "integer"}, scores=_OBJ, calibration={"type": "boolean"},
                              rule_id=_STR, rule_version={"type": "integer"}))},
    "/api/v1/qa/evaluations/{evaluation_id}": {"get": _qa(
        "one evaluation with its revisions, appeals, audit trail and appeal deadline", 403, 404,
        params=("evaluation_id",))},
    "/api/v1/qa/evaluations/{evaluation_id}/acknowledge": {"post": _qa(
        "the agent acknowledges its evaluation", 403, 404, 409, params=("evaluation_id",))},
    "/api/v1/qa/evaluations/{evaluation_id}/appeal": {"post": _qa(
        "the agent appeals items within the window, with a reason", 400, 403, 404, 409, params=("evaluation_id",),
        body=_obj(("item_ids", "reason"), item_ids={"type": "array", "items": _STR}, reason=_STR))},
    "/api/v1/qa/evaluations/{evaluation_id}/withdraw": {"post": _qa(
        "the agent withdraws its open appeal", 403, 404, 409, params=("evaluation_id",))},
    "/api/v1/qa/evaluations/{evaluation_id}/appeal/admission": {"post": _qa(
        "the agent's team leader (not the evaluator) admits the open appeal to the panel or refuses it with a "
        "reason (terminal)", 400, 403, 404, 409, params=("evaluation_id",),
        body=_obj(("admit",), admit={"type": "boolean"}, reason=_STR))},
    "/api/v1/qa/evaluations/{evaluation_id}/appeal/opinions": {"post": _qa(
        "a panel member (leader, evaluator, supervisor seat) records its opinion; the third decides by majority, "
        "else the supervisor seat's opinion", 400, 403, 404, 409, params=("evaluation_id",),
        body=_obj(("verdict",), verdict={"type": "string", "enum": ["uphold", "overturn", "partial"]},
                  points=_OBJ, comment=_STR))},
    "/api/v1/qa/evaluations/{evaluation_id}/appeal/decision": {"post": _qa(
        "past the decision deadline, the supervisor seat closes the appeal with the opinions recorded",
        403, 404, 409, params=("evaluation_id",))},
    "/api/v1/qa/appeals/report": {"get": _qa("appeal counts per agent and per evaluator, with overturn rates",
                                             403)},
    "/api/v1/qa/scores/report": {"get": _qa(
        "QA scores per agent and per evaluator: count and mean of FINAL evaluations; the others apart as "
        "provisional", 403)},
    "/api/v1/qa/calibration/{serial}": {"get": _qa(
        "spread per item and per evaluator of a recording's calibration scores; tolerance flags outliers",
        400, 403, 404, 409, params=("serial",), query=("tolerance", "consensus"))},
    "/api/v1/qa/recordings/{serial}/audio": {"get": _qa(
        "play a recording (agent: its own; supervisor: its queues and teams); channel=both|caller|agent; logged",
        400, 403, 404, 416, params=("serial",), query=("channel", "token"), audio=True)},
    "/api/v1/qa/library": {
        "get": _qa("good-call library entries (agents: published ones and their nominations)", query=("state",)),
        "post": _qa("nominate a recording", 400, 403, 404, status="201",
                    body=_obj(("recording_serial", "reason"), recording_serial=_STR, reason=_STR,
                              tags={"type": "array", "items": _STR}))},
    "/api/v1/qa/library/{entry_id}": {"get": _qa("one library entry with its view count", 404,
                                                 params=("entry_id",))},
    "/api/v1/qa/library/{entry_id}/review": {"post": _qa(
        "approve (publish, with note, tags and redacted spans; notice to all agents) or reject; not the nominator",
        400, 403, 404, 409, params=("entry_id",),
        body=_obj(("approve",), approve={"type": "boolean"}, comment=_STR, note=_STR,
                  tags={"type": "array", "items": _STR},
                  redactions={"type": "array", "items": {"type": "array", "items": _NUM}}))},
    "/api/v1/qa/library/{entry_id}/retire": {"post": _qa("retire a published entry", 403, 404, 409,
                                                         params=("entry_id",), body=_obj(reason=_STR))},
    "/api/v1/qa/library/{entry_id}/audio": {"get": _qa(
        "play a published library entry, redacted spans silent; every request is a logged view", 400, 404, 416,
        params=("entry_id",), query=("channel", "token"), audio=True)},
}
"""The QA routes (cti/qa/routes.py), mounted by the node next to ``cti.http.api.build_app``'s; they accept agent and
supervisor tokens as well as the operator token (tests/cti/qa/test_api_qa.py checks the set)."""
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
    {"name": "queue", "in": "query", "required": False, "schema": _STR,
     "description": "kind=patience only: the queue whose legs are counted (default every queue)"},
]
_TARGET_GAP = {"type": "object", "properties": {"target": _NUM, "actual": _NUM_OR_NULL, "gap": _NUM_OR_NULL,
                                                "met": {"type": ["boolean", "null"]},
                                                "direction": {"enum": ["at_least", "at_most"]}}}
REPORT_PATHS: dict[str, Any] = {
    "/api/v1/reports/{kind}": {"get": {
        "summary": "KPI report per queue (kind=queues), per agent and team (kind=agents) or per dialled number "
                   "(kind=ivr: offered to the node, IVR abandons, IVR-contained calls) and interval, or the callers' "
                   "mean patience estimated from the legs (kind=patience, for Erlang A), from the records "
                   "(docs/reports.md); interval/format/figure/group do not apply to patience, figure/group/svg "
                   "not to ivr, queue only to patience. Computed in a report worker process",
        "parameters": [{"name": "kind", "in": "path", "required": True,
                        "schema": {"enum": ["queues", "agents", "ivr", "patience"]}},
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
            "403": _json(_ref("Error"), "forbidden: a supervisor's token asked for kind ivr or "
                                        "patience; api_disabled: no operator token configured"),
            "500": _json(_ref("Error"), "reports.failed: the report worker failed"),
            "503": _json(_ref("Error"), "reports_busy: the report took longer than 60 s, or the HTTP guard is full"),
            **{k: v for k, v in _errors().items() if k not in ("403", "503")}}}},
    "/api/v1/kpi/replay": {"get": {
        "summary": "a past day's live queue.stats figures, rebuilt by replaying the day's stored legs through the "
                   "live statistics (acd/stats.py); what cti kpi verify --date compares with the day's report",
        "parameters": [{"name": "date", "in": "query", "required": True, "schema": _STR,
                        "description": "the site's local day (YYYY-MM-DD), not after today"}],
        "responses": {
            "200": _json(_obj(date=_STR, timezone=_STR, source={"enum": ["replay"]}, queues={
                "type": "array",
                "items": {"allOf": [_ref("QueueStats"), _obj(queued_at_day_end={"type": "integer"})]}}),
                "per queue: the queue.stats data at the day's last instant, and the legs of the day still queued then"),
            "400": _json(_ref("Error"), "reports.input_invalid (a bad date or one after today) or unknown_parameter"),
            "500": _json(_ref("Error"), "reports.failed: the report worker failed"),
            "503": _json(_ref("Error"), "reports_busy: the replay took longer than 60 s, or the HTTP guard is full"),
            **{k: v for k, v in _errors().items() if k != "503"}}}},
}
"""The report routes (cti/reports/routes.py), mounted by the server next to build_app's (they need the store)."""


CONTACT_PATHS: dict[str, Any] = {
    "/api/v1/calls/{call_id}/contacts": {"get": {
        **_op("the live call's caller: its last calls from our CDRs, newest first (the screen pop); open to the "
              "operator, the agent the call is offered to or connected with, and supervisors of its queue",
              _json(_obj(call_id=_STR, caller_number={"type": ["string", "null"]},
                         contacts={"type": "array", "items": _obj(
                             call_id=_STR, arrived_at=_NUM, queue={"type": ["string", "null"]},
                             agent_id={"type": ["string", "null"]}, answered={"type": "boolean"},
                             disposition={"type": ["string", "null"]}, end_reason={"type": ["string", "null"]},
                             duration_s={"type": ["number", "null"]}, talk_s={"type": ["number", "null"]})}),
                    "previous contacts"), 400, 403, 404, params=_C),
        "parameters": [{"name": "call_id", "in": "path", "required": True, "schema": {"type": "string"}},
                       {"name": "limit", "in": "query", "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}}]}},
}
"""The screen pop's previous contacts (cti/http/contacts.py), mounted by the server beside build_app's."""

_VM_ID = [{"name": "voicemail_id", "in": "path", "required": True, "schema": _STR}]
_VOICEMAIL = _obj(
    id=_STR, call_id=_STR, mailbox=_STR, queue={"type": ["string", "null"], "description": "the queue named like "
                                                "the mailbox (its supervisors see the message); null: none"},
    caller_number=_STR, started=_NUM, duration_s=_NUM, heard={"type": "boolean"},
    heard_at={"type": ["number", "null"]}, heard_by={"type": ["string", "null"]})
_VM_404 = _json(_ref("Error"), "voicemail.not_found (no such message, or not one the token may see)")
VOICEMAIL_PATHS: dict[str, Any] = {
    "/api/v1/voicemail": {"get": {
        "summary": "voicemail messages, newest first (docs/voicemail.md): the operator sees all, a supervisor's "
                   "token the mailboxes of its queues; agents are refused",
        "parameters": [
            {"name": "mailbox", "in": "query", "required": False, "schema": _STR},
            {"name": "unheard", "in": "query", "required": False, "schema": {"enum": ["true", "false"]}},
            {"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}}],
        "responses": {"200": _json(_obj(voicemail={"type": "array", "items": _VOICEMAIL}), "the messages"),
                      "400": _json(_ref("Error"), "bad_parameter (unknown parameter, bad unheard or limit)"),
                      "403": _json(_ref("Error"), "voicemail.forbidden (an agent's token)"),
                      **{k: v for k, v in _errors().items() if k != "403"}}}},
    "/api/v1/voicemail/{voicemail_id}/audio": {"get": {
        "summary": "a message's audio as WAV (8 kHz 16-bit): channel=caller (mono, default) or both (the stored "
                   "stereo file); one bytes= Range is answered 206, as the QA recording route",
        "parameters": [*_VM_ID, {"name": "channel", "in": "query", "required": False,
                                 "schema": {"enum": ["caller", "both"], "default": "caller"}},
                       {"name": "Range", "in": "header", "required": False, "schema": _STR}],
        "responses": {"200": {"description": "the audio", "content": {"audio/wav": {"schema": _STR}}},
                      "206": {"description": "the requested range", "content": {"audio/wav": {"schema": _STR}}},
                      "400": _json(_ref("Error"), "bad_parameter (channel)"), "404": _VM_404,
                      "416": _json(_ref("Error"), "voicemail.range_not_satisfiable"), **_errors()}}},
    "/api/v1/voicemail/{voicemail_id}/heard": {"post": {
        "summary": "mark a message heard (the first listener and time are kept)",
        "parameters": _VM_ID,
        "responses": {"200": _json(_VOICEMAIL, "the message"), "404": _VM_404, **_errors()}}},
}
"""The voicemail routes (cti/voicemail/routes.py), mounted by the server beside build_app's (they need the store)."""


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
        "/api/v1/agents/{agent_id}/end-wrap-up": _agent_op("end after-call work", _obj(disposition=_STR, notes=_STR)),
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
        **QA_PATHS,
        **REPORT_PATHS,
        **CONTACT_PATHS,
        **ADHERENCE_PATHS,
        **VOICEMAIL_PATHS,
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
                "queues": {"type": "array", "items": _STR}, "wrap_up_s": {"type": ["number", "null"]}}},
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



__all__ = ["ADHERENCE_PATHS", "CONTACT_PATHS", "OPENAPI", "QA_PATHS", "REPORT_PATHS", "STAFFING_PATHS",
           "VOICEMAIL_PATHS"]
