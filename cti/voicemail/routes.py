"""Admin API routes of voicemail (docs/voicemail.md, docs/api.md "Voicemail"), under ``/api/v1/voicemail``.

The operator token reads every message; a supervisor's token (``POST /auth/login``) reads the messages of the
mailboxes named after its queues (``queue`` of the message); agents are refused (403). Errors are
``{"error": {"code", "message"}}``: 400 bad parameter, 401 no or bad token, 403 not allowed, 404 unknown (or not
visible), 416 a range outside the audio.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from cti.errors import ControlError
from cti.floor.control import Control
from cti.http.api import ApiError, add_token_reader
from cti.qa import QaError, read_layout, wav_playback
from cti.qa.audio import Channel
from cti.store import NotFoundError, Store
from cti.tokens import Principal, Role, TokenIssuer
from cti.voicemail.model import VoicemailMessage
from cti.voicemail.store import VoicemailStore

__all__ = ["VOICEMAIL_PATH", "add_voicemail_routes"]

VOICEMAIL_PATH = "/api/v1/voicemail"
_READER = web.RequestKey("cti.voicemail.reader", Principal)
_LIST_PARAMS = frozenset({"mailbox", "unheard", "limit"})


def _bool(value: str) -> bool:
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ApiError(400, "bad_parameter", f"unheard must be true or false, got {value!r}")


class _Scope:
    """Which messages a request may see: ``queues`` None = all (the operator)."""

    def __init__(self, request: web.Request, control: Control) -> None:
        reader = request.get(_READER)
        self.who = "operator" if reader is None else f"{reader.role.value}:{reader.subject}"
        self.queues: frozenset[str] | None = None
        if reader is None or reader.role is Role.OPERATOR:
            return
        if reader.role is not Role.SUPERVISOR:
            raise ApiError(403, "voicemail.forbidden", "only the operator and supervisors of the mailbox's queue "
                                                       "may read voicemail")
        try:
            self.queues = control.supervisor_scope(reader.subject)[0]
        except ControlError:
            self.queues = frozenset()

    def sees(self, message: VoicemailMessage) -> bool:
        return self.queues is None or (message.queue is not None and message.queue in self.queues)


def add_voicemail_routes(app: web.Application, *, store: Store, control: Control, tokens: TokenIssuer,
                         directory: Path, clock: Callable[[], float]) -> VoicemailStore:
    """Mount the voicemail routes on ``app`` (built by ``cti.http.api.build_app``); ``directory`` holds the messages.

    Raises:
        RuntimeError: ``app`` is already frozen.
    """
    messages = VoicemailStore(store)

    add_token_reader(app, tokens, _READER, lambda request, _: request.path.startswith(VOICEMAIL_PATH))

    async def visible(request: web.Request, scope: _Scope) -> VoicemailMessage:
        voicemail_id = request.match_info["voicemail_id"]
        try:
            message = await messages.get(voicemail_id)
        except NotFoundError:
            message = None
        if message is None or not scope.sees(message):
            raise ApiError(404, "voicemail.not_found", f"no voicemail {voicemail_id!r}")
        return message

    async def list_messages(request: web.Request) -> web.Response:
        unknown = sorted(set(request.query) - _LIST_PARAMS)
        if unknown:
            raise ApiError(400, "bad_parameter", f"unknown parameter(s): {', '.join(unknown)}; known: "
                                                 "mailbox, unheard, limit")
        scope = _Scope(request, control)
        raw_limit = request.query.get("limit", "100")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
            raise ApiError(400, "bad_parameter", "limit must be an integer within 1..1000")
        unheard = request.query.get("unheard")
        found = await messages.list(mailbox=request.query.get("mailbox") or None,
                                    unheard=None if unheard is None else _bool(unheard),
                                    queues=scope.queues, limit=int(raw_limit))
        return web.json_response({"voicemail": [m.to_json() for m in found]})

    async def audio(request: web.Request) -> web.StreamResponse:
        scope = _Scope(request, control)
        message = await visible(request, scope)
        channel = {"caller": Channel.CALLER, "both": Channel.BOTH}.get(request.query.get("channel", "caller"))
        if channel is None:  # a message has no agent side
            raise ApiError(400, "bad_parameter", "channel is caller (the default) or both")
        name = message.path  # a file name in the voicemail directory, never a path (cti.voicemail.take)
        if not name.endswith(".wav") or "/" in name or os.sep in name or name.startswith("."):
            raise ApiError(404, "voicemail.audio_missing", f"the audio of {message.id} is not in the voicemail "
                                                             "directory")
        path = directory / name
        try:
            layout = await asyncio.to_thread(read_layout, path)
            playback, _ = wav_playback(path, layout, channel, request.headers.get("Range"))
        except FileNotFoundError:
            raise ApiError(404, "voicemail.audio_missing", f"the audio of {message.id} is missing") from None
        except QaError as exc:
            raise ApiError(exc.status_hint, exc.code.replace("qa.", "voicemail."), str(exc)) from exc
        return await playback.respond(request)

    async def heard(request: web.Request) -> web.Response:
        scope = _Scope(request, control)
        message = await visible(request, scope)
        updated = await messages.mark_heard(message.id, scope.who, clock())
        return web.json_response(updated.to_json())

    app.router.add_get(VOICEMAIL_PATH, list_messages)
    app.router.add_get(f"{VOICEMAIL_PATH}/{{voicemail_id}}/audio", audio)
    app.router.add_post(f"{VOICEMAIL_PATH}/{{voicemail_id}}/heard", heard)
    return messages
