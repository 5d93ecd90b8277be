"""Admin API routes of quality assurance (docs/qa.md, docs/api.md "Quality assurance"), under ``/api/v1/qa/``.

Unlike the rest of ``/api/v1`` these routes are open to agents and supervisors too: a request carries
``Authorization: Bearer <token>`` with the operator token or a signed token of ``POST /auth/login`` /
``POST /api/v1/tokens`` (``?token=`` is accepted on the two audio routes, for the browser's ``<audio>``). Each
handler decides what the principal may do (docs/qa.md "Roles"). Errors are ``{"error": {"code", "message"}}``:
400 bad input (``problems`` lists ``path: reason`` for a refused rule, form or scores), 401 no or bad token,
403 not allowed, 404 unknown (or not visible), 409 not in this state, 416 a range outside the audio.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from config.schema import ServerConfig
from cti.errors import CtiError
from cti.events.publish import Publisher
from cti.floor.notices import NoticeError, NoticeService
from cti.http.guard import BodyError, body_refusal, read_json, refusal_response
from cti.qa import Action, Actor, Directory, EvaluationService, Library, QaError, QaService, item_json
from cti.qa.appeals import Verdict
from cti.store import Store
from cti.tokens import Role, TokenError, TokenIssuer

__all__ = ["QA_PREFIX", "add_qa_routes", "mount_qa"]

QA_PREFIX = "/api/v1/qa/"
log = structlog.get_logger("cti.qa")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_MAX_TOLERANCE = 100.0


class _Refused(CtiError):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.extra = status, code, extra


def _actor(request: web.Request, tokens: TokenIssuer, operator_token: str | None, *, query_ok: bool) -> Actor:
    given = request.headers.get("Authorization", "")
    token = given[7:] if given.startswith("Bearer ") else None
    if token is None and query_ok:
        token = request.query.get("token")
    if not token:
        raise _Refused(401, "token_missing", "pass Authorization: Bearer <token> (the operator token or a login "
                                             "token)")
    if operator_token is not None and hmac.compare_digest(token.encode(), operator_token.encode()):
        return Actor(role="operator", subject="operator")
    try:
        principal = tokens.verify(token)
    except TokenError as exc:
        raise _Refused(401, exc.code, str(exc)) from exc
    role = "operator" if principal.role is Role.OPERATOR else principal.role.value
    return Actor(role=role, subject=principal.subject)


async def _body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    data = await read_json(request)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _Refused(400, "bad_json", "the body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _Refused(400, "unknown_field", f"unknown field(s): {', '.join(unknown)}")
    return data


def _int(value: str | None, name: str, *, required: bool = False) -> int | None:
    if value is None:
        if required:
            raise _Refused(400, "bad_parameter", f"{name} is required")
        return None
    try:
        number = int(value)
    except ValueError:
        raise _Refused(400, "bad_parameter", f"{name} must be an integer, got {value!r}") from None
    if number < 1:
        raise _Refused(400, "bad_parameter", f"{name} must be positive")
    return number


def _str(data: dict[str, Any], name: str, *, required: bool = False, default: str = "") -> str:
    value = data.get(name, None)
    if value is None:
        if required:
            raise _Refused(400, "missing_field", f"field {name!r} is required")
        return default
    if not isinstance(value, str) or len(value) > 4000:
        raise _Refused(400, "bad_field", f"field {name!r} must be a text of at most 4000 characters")
    return value


def add_qa_routes(app: web.Application, *, service: QaService, evaluations: EvaluationService, library: Library,
                  tokens: TokenIssuer, operator_token: str | None) -> None:
    """Mount the QA routes on ``app`` (before it is frozen). Raises: RuntimeError (the app is frozen)."""

    def route(handler: Callable[[web.Request, Actor], Awaitable[Any]], *, status: int = 200,
              query_token: bool = False) -> Handler:
        async def wrapped(request: web.Request) -> web.StreamResponse:
            try:
                actor = _actor(request, tokens, operator_token, query_ok=query_token)
                answer = await handler(request, actor)
            except _Refused as exc:
                return refusal_response(exc.status, exc.code, str(exc), **exc.extra)
            except BodyError as exc:
                return body_refusal(exc)
            except QaError as exc:
                problems = getattr(exc, "problems", None)
                if problems is not None:
                    return refusal_response(exc.status_hint, exc.code, str(exc), problems=list(problems))
                return refusal_response(exc.status_hint, exc.code, str(exc))
            if isinstance(answer, web.StreamResponse):
                return answer
            return web.json_response(answer, status=status)
        return wrapped

    def supervisor_or_operator(actor: Actor) -> None:
        if actor.role not in ("supervisor", "operator"):
            raise _Refused(403, "qa.forbidden", "only supervisors and the operator may do this")

    # ------------------------------------------------------------------------------ rules
    async def list_rules(_: web.Request, actor: Actor) -> Any:
        return {"rules": [r.public() for r in await service.rules()]}

    async def publish_rule(request: web.Request, actor: Actor) -> Any:
        supervisor_or_operator(actor)
        body = await _body(request, {"rule", "seed_commitment"})
        if "rule" not in body:
            raise _Refused(400, "missing_field", "field 'rule' is required")
        commitment = body.get("seed_commitment")
        if commitment is not None and not isinstance(commitment, str):
            raise _Refused(400, "bad_field", "seed_commitment must be sha256:<64 hex digits>")
        return await service.publish_rule(body["rule"], actor=f"{actor.role}:{actor.subject}",
                                          seed_commitment=commitment)

    async def show_rule(request: web.Request, actor: Actor) -> Any:
        row = await service.rule(request.match_info["rule_id"], _int(request.query.get("version"), "version"))
        return row.public()

    async def close_rule(request: web.Request, actor: Actor) -> Any:
        supervisor_or_operator(actor)
        body = await _body(request, {"version", "seed"})
        version = body.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
            raise _Refused(400, "bad_field", "version must be a positive integer")
        seed = body.get("seed")
        if seed is not None and not isinstance(seed, str):
            raise _Refused(400, "bad_field", "seed must be a text")
        return await service.close_rule(request.match_info["rule_id"], version,
                                        actor=f"{actor.role}:{actor.subject}", seed=seed)

    async def rule_samples(request: web.Request, actor: Actor) -> Any:
        row, items = await service.samples(request.match_info["rule_id"],
                                           _int(request.query.get("version"), "version"))
        if actor.role == "agent":  # an agent sees its own sample and the rule's digests, not colleagues' calls
            items = [i for i in items if i.agent_id == actor.subject]
        return row.public() | {"samples": [item_json(i) for i in items]}

    async def verify_rule(request: web.Request, actor: Actor) -> Any:
        return await service.verify(request.match_info["rule_id"], _int(request.query.get("version"), "version"))

    async def assignments(request: web.Request, actor: Actor) -> Any:
        supervisor_or_operator(actor)
        evaluator = actor.subject if actor.role == "supervisor" else request.query.get("evaluator")
        if evaluator is None:
            raise _Refused(400, "bad_parameter", "evaluator is required for the operator")
        return {"evaluator": evaluator, "samples": await service.assigned(evaluator)}

    # ------------------------------------------------------------------------------ forms
    async def list_forms(_: web.Request, actor: Actor) -> Any:
        return {"forms": await evaluations.forms()}

    async def publish_form(request: web.Request, actor: Actor) -> Any:
        body = await _body(request, {"form"})
        return await evaluations.publish_form(body.get("form"), actor)

    async def show_form(request: web.Request, actor: Actor) -> Any:
        form = await evaluations.form(request.match_info["form_id"], _int(request.query.get("version"), "version"))
        return {"form_id": form.form_id, "version": form.version, "form": form.source}

    # ------------------------------------------------------------------------------ evaluations
    async def list_evaluations(request: web.Request, actor: Actor) -> Any:
        q = request.query
        return {"evaluations": await evaluations.evaluations(
            actor, agent_id=q.get("agent_id"), evaluator=q.get("evaluator"),
            recording_serial=q.get("recording_serial"))}

    async def submit(request: web.Request, actor: Actor) -> Any:
        body = await _body(request, {"recording_serial", "form_id", "form_version", "scores", "calibration",
                                     "rule_id", "rule_version"})
        fv = body.get("form_version")
        if fv is not None and (not isinstance(fv, int) or isinstance(fv, bool)):
            raise _Refused(400, "bad_field", "form_version must be an integer")
        calibration = body.get("calibration", False)
        if not isinstance(calibration, bool):
            raise _Refused(400, "bad_field", "calibration must be true or false")
        rv = body.get("rule_version")
        if rv is not None and (not isinstance(rv, int) or isinstance(rv, bool)):
            raise _Refused(400, "bad_field", "rule_version must be an integer")
        return await evaluations.submit(actor, recording_serial=_str(body, "recording_serial", required=True),
                                        form_id=_str(body, "form_id", required=True), form_version=fv,
                                        scores=body.get("scores"), calibration=calibration,
                                        rule_id=_str(body, "rule_id") or None, rule_version=rv)

    def evaluation_id(request: web.Request) -> int:
        found = _int(request.match_info["evaluation_id"], "evaluation_id", required=True)
        assert found is not None
        return found

    async def show_evaluation(request: web.Request, actor: Actor) -> Any:
        return await evaluations.evaluation(actor, evaluation_id(request))

    async def acknowledge(request: web.Request, actor: Actor) -> Any:
        await _body(request, set())
        return await evaluations.act(actor, evaluation_id(request), Action.ACKNOWLEDGE)

    async def appeal(request: web.Request, actor: Actor) -> Any:
        body = await _body(request, {"item_ids", "reason"})
        items = body.get("item_ids")
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise _Refused(400, "bad_field", "item_ids must be a list of item ids")
        return await evaluations.act(actor, evaluation_id(request), Action.FILE,
                                     reason=_str(body, "reason", required=True), item_ids=items)

    async def withdraw(request: web.Request, actor: Actor) -> Any:
        await _body(request, set())
        return await evaluations.act(actor, evaluation_id(request), Action.WITHDRAW)

    async def admission(request: web.Request, actor: Actor) -> Any:
        body = await _body(request, {"admit", "reason"})
        admit = body.get("admit")
        if not isinstance(admit, bool):
            raise _Refused(400, "bad_field", "admit must be true (to the panel) or false (refused, with a reason)")
        return await evaluations.act(actor, evaluation_id(request), Action.ADMIT if admit else Action.REFUSE,
                                     reason=_str(body, "reason"))

    async def opinion(request: web.Request, actor: Actor) -> Any:
        body = await _body(request, {"verdict", "points", "comment"})
        name = body.get("verdict")
        verdicts = {v.value: v for v in Verdict}
        if not isinstance(name, str) or name not in verdicts:
            raise _Refused(400, "bad_field", "verdict must be uphold, overturn or partial")
        points = body.get("points", {})
        if not isinstance(points, dict):
            raise _Refused(400, "bad_field", "points must be an object of item id to answer")
        return await evaluations.act(actor, evaluation_id(request), Action.OPINE, reason=_str(body, "comment"),
                                     verdict=verdicts[name], points=points)

    async def decision(request: web.Request, actor: Actor) -> Any:
        await _body(request, set())
        return await evaluations.act(actor, evaluation_id(request), Action.DECIDE)

    async def appeal_report(_: web.Request, actor: Actor) -> Any:
        return await evaluations.appeal_report(actor)

    async def score_report(_: web.Request, actor: Actor) -> Any:
        return await evaluations.score_report(actor)

    async def calibration(request: web.Request, actor: Actor) -> Any:
        raw = request.query.get("tolerance")
        try:
            tolerance = None if raw is None else float(raw)
        except ValueError:
            raise _Refused(400, "bad_parameter", f"tolerance must be a number, got {raw!r}") from None
        if tolerance is not None and not 0 <= tolerance <= _MAX_TOLERANCE:
            raise _Refused(400, "bad_parameter", "tolerance must be within 0..100 points")
        return await evaluations.calibration(actor, request.match_info["serial"], tolerance=tolerance,
                                             consensus_evaluation_id=_int(request.query.get("consensus"),
                                                                          "consensus"))

    # ------------------------------------------------------------------------------ audio, library
    async def stream(request: web.Request, actor: Actor, serial: str, entry_id: int | None) -> web.StreamResponse:
        playback = await library.play(actor, serial, request.query.get("channel", "both"),
                                      request.headers.get("Range"), entry_id=entry_id)
        return await playback.respond(request)

    async def recording_audio(request: web.Request, actor: Actor) -> Any:
        return await stream(request, actor, request.match_info["serial"], None)

    def entry_id(request: web.Request) -> int:
        found = _int(request.match_info["entry_id"], "entry_id", required=True)
        assert found is not None
        return found

    async def library_audio(request: web.Request, actor: Actor) -> Any:
        return await stream(request, actor, "", entry_id(request))

    async def list_library(request: web.Request, actor: Actor) -> Any:
        return {"entries": await library.entries(actor, state=request.query.get("state"))}

    async def nominate(request: web.Request, actor: Actor) -> Any:
        body = await _body(request, {"recording_serial", "reason", "tags"})
        return await library.nominate(actor, _str(body, "recording_serial", required=True),
                                      reason=_str(body, "reason", required=True), tags=body.get("tags", []))

    async def show_entry(request: web.Request, actor: Actor) -> Any:
        return await library.entry(actor, entry_id(request))

    async def review(request: web.Request, actor: Actor) -> Any:
        body = await _body(request, {"approve", "comment", "note", "tags", "redactions"})
        approve = body.get("approve")
        if not isinstance(approve, bool):
            raise _Refused(400, "bad_field", "approve must be true or false")
        return await library.review(actor, entry_id(request), approve=approve, comment=_str(body, "comment"),
                                    note=_str(body, "note"), tags=body.get("tags"),
                                    redactions=body.get("redactions"))

    async def retire(request: web.Request, actor: Actor) -> Any:
        body = await _body(request, {"reason"})
        return await library.retire(actor, entry_id(request), reason=_str(body, "reason"))

    p = QA_PREFIX.rstrip("/")
    add = app.router
    add.add_get(f"{p}/rules", route(list_rules))
    add.add_post(f"{p}/rules", route(publish_rule, status=201))
    add.add_get(f"{p}/rules/{{rule_id}}", route(show_rule))
    add.add_post(f"{p}/rules/{{rule_id}}/close", route(close_rule))
    add.add_get(f"{p}/rules/{{rule_id}}/samples", route(rule_samples))
    add.add_get(f"{p}/rules/{{rule_id}}/verify", route(verify_rule))
    add.add_get(f"{p}/assignments", route(assignments))
    add.add_get(f"{p}/forms", route(list_forms))
    add.add_post(f"{p}/forms", route(publish_form, status=201))
    add.add_get(f"{p}/forms/{{form_id}}", route(show_form))
    add.add_get(f"{p}/evaluations", route(list_evaluations))
    add.add_post(f"{p}/evaluations", route(submit, status=201))
    add.add_get(f"{p}/evaluations/{{evaluation_id}}", route(show_evaluation))
    add.add_post(f"{p}/evaluations/{{evaluation_id}}/acknowledge", route(acknowledge))
    add.add_post(f"{p}/evaluations/{{evaluation_id}}/appeal", route(appeal))
    add.add_post(f"{p}/evaluations/{{evaluation_id}}/withdraw", route(withdraw))
    add.add_post(f"{p}/evaluations/{{evaluation_id}}/appeal/admission", route(admission))
    add.add_post(f"{p}/evaluations/{{evaluation_id}}/appeal/opinions", route(opinion))
    add.add_post(f"{p}/evaluations/{{evaluation_id}}/appeal/decision", route(decision))
    add.add_get(f"{p}/appeals/report", route(appeal_report))
    add.add_get(f"{p}/scores/report", route(score_report))
    add.add_get(f"{p}/calibration/{{serial}}", route(calibration))
    add.add_get(f"{p}/recordings/{{serial}}/audio", route(recording_audio, query_token=True))
    add.add_get(f"{p}/library", route(list_library))
    add.add_post(f"{p}/library", route(nominate, status=201))
    add.add_get(f"{p}/library/{{entry_id}}", route(show_entry))
    add.add_post(f"{p}/library/{{entry_id}}/review", route(review))
    add.add_post(f"{p}/library/{{entry_id}}/retire", route(retire))
    add.add_get(f"{p}/library/{{entry_id}}/audio", route(library_audio, query_token=True))


def mount_qa(app: web.Application, *, store: Store, config: ServerConfig, directory: Directory,
             publisher: Publisher, notices: NoticeService, tokens: TokenIssuer) -> EvaluationService:
    """Build the QA services of a node and mount their routes: events go out through ``publisher`` (bus,
    WebSocket, MQTT, webhooks), library notices through ``notices``; the site's zone is ``node.timezone``, its
    holidays ``node.holidays``. The node runs the returned service's ``run_finaliser``."""
    def publish(type_: str, data: Mapping[str, Any]) -> None:
        publisher.publish(type_, data, durable=False)

    service = QaService(store, zone=config.node.timezone, clock=time.time, directory=directory, publish=publish)
    evaluations = EvaluationService(service, appeal_working_days=config.qa.appeal_window_working_days,
                                     decision_working_days=config.qa.appeal_decision_working_days,
                                    calibration_tolerance=config.qa.calibration_tolerance,
                                    holidays=frozenset(config.node.holidays))

    def notify(text: str, now: float) -> None:
        try:
            notices.broadcast(sender="qa", text=text, now=now)
        except NoticeError as exc:  # the entry is published; only its announcement failed
            log.warning("qa.library.notice_failed", code=exc.code, error=str(exc))

    library = Library(evaluations, Path(config.data_dir) / "recordings", notify=notify)
    add_qa_routes(app, service=service, evaluations=evaluations, library=library, tokens=tokens,
                  operator_token=config.operator_token)
    return evaluations
