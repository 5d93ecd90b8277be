"""Recording playback (authorised, logged) and the good-call library (domain.md §4.3), over the store.

Playback: the recording is found by its serial in the store's index, never by a path from the request; its file
must resolve inside the recordings directory (no traversal, no symlink out of it). Every request, served or
refused, is a row of ``qa_playbacks``. The audio is read in a worker thread, a chunk at a time.

Library: ``nominated`` (by the agent who took the call, a supervisor of it, or the operator) -> ``published``
(a reviewer other than the nominator approves it, with tags, a note and optional redacted spans; a notice goes to
every agent) or ``rejected``; ``published`` -> ``retired``. Any agent may list and play published entries (views
are logged); redacted spans are silence in what is played.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from cti.qa.appeals import Actor
from cti.qa.audio import Channel, WavLayout, frames_for, output_size, parse_range, parse_wav_header, render
from cti.qa.errors import ForbiddenError, NotFoundError, QaError, StateError
from cti.qa.evaluations import EvaluationService
from cti.qa.store import QaTx
from cti.store import InvalidRecordError, Recording, RecordingSerial, parse_serial

__all__ = ["Library", "Playback", "read_layout", "wav_playback"]

log = structlog.get_logger("cti.qa")
_HEAD = 4096
_CHUNK_FRAMES = 32768
_MAX_TAGS = 20
_MAX_NOTE = 500  # the library notice (note included) stays within a notice's 2000 characters
Notify = Callable[[str, float], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class Playback:
    """What to answer: ``status`` 200 or 206, the headers, and the body's chunks."""

    status: int
    headers: dict[str, str]
    chunks: AsyncIterator[bytes]

    async def respond(self, request: web.Request) -> web.StreamResponse:
        """Stream it as the answer to ``request`` (QA recordings, the library, voicemail)."""
        response = web.StreamResponse(status=self.status, headers=self.headers)
        await response.prepare(request)
        async for chunk in self.chunks:
            await response.write(chunk)
        await response.write_eof()
        return response


class Library:
    """Playback and the good-call library; ``recordings_dir`` holds the WAV files."""

    def __init__(self, evaluations: EvaluationService, recordings_dir: Path, *, notify: Notify | None = None) -> None:
        self.ev = evaluations
        self.base = evaluations.base
        self.dir = recordings_dir
        self.notify = notify

    # ------------------------------------------------------------------------------ playback
    async def _recording(self, serial: str) -> Recording:
        try:
            parse_serial(serial)
        except InvalidRecordError:
            raise NotFoundError(f"no recording {serial!r}") from None
        rec = await self.base.store.get_recording(RecordingSerial(serial))
        if rec is None:
            raise NotFoundError(f"no recording {serial}")
        return rec

    def _open(self, rec: Recording) -> tuple[Path, WavLayout]:
        """The recording's file, which must resolve inside the recordings directory, and its layout (blocking:
        run it in a thread). Raises: NotFoundError, BadRecording."""
        base = self.dir.resolve()
        path = (self.dir / rec.path).resolve() if not os.path.isabs(rec.path) else Path(rec.path).resolve()
        if not path.is_relative_to(base) or not path.is_file():
            raise NotFoundError(f"the audio of {rec.serial} is not in the recordings directory")
        return path, _layout(path)

    async def _log(self, serial: str, actor: Actor, channel: str, rng: tuple[int, int] | None, status: int) -> None:
        serial, channel = _printable(serial), _printable(channel)  # what was asked, even garbage, is logged
        async with self.base.qa.transaction() as tx:
            await tx.x.execute("INSERT INTO qa_playbacks (recording_serial, actor, at, channel, range_start, "
                               "range_end, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
                               (serial, f"{actor.role}:{actor.subject}", self.base.clock(), channel,
                                None if rng is None else rng[0], None if rng is None else rng[1], status))

    async def play(self, actor: Actor, serial: str, channel: str, range_header: str | None, *,
                   entry_id: int | None = None) -> Playback:
        """Authorise, log and open one (range) request for a recording's audio.

        Raises:
            NotFoundError, ForbiddenError (403: an agent asking for another agent's recording, a supervisor outside
            its queues and teams), RangeNotSatisfiable (416), QaError (bad channel).
        """
        try:
            ch = Channel(channel)
        except ValueError:
            raise QaError("channel is both, caller or agent", code="qa.bad_channel") from None
        redactions: list[tuple[float, float]] = []
        try:
            if entry_id is None:
                rec = await self._recording(serial)
                if not self.ev.may_see(actor, rec.agent_id, rec.queue_id):
                    raise ForbiddenError(f"recording {serial} is not yours to play")
            else:
                entry = await self.entry(actor, entry_id)
                rec = await self._recording(entry["recording_serial"])
                redactions = [(float(a), float(b)) for a, b in entry["redactions"]]
            path, layout = await asyncio.to_thread(self._open, rec)
            playback, rng = wav_playback(path, layout, ch, range_header, redactions)
        except QaError as exc:
            await self._log(serial, actor, channel, None, exc.status_hint)
            raise
        await self._log(rec.serial, actor, ch.value, rng, playback.status)
        if entry_id is not None:
            async with self.base.qa.transaction() as tx:
                await tx.x.execute("INSERT INTO qa_library_views (entry_id, viewer, at) VALUES (?, ?, ?)",
                                   (entry_id, f"{actor.role}:{actor.subject}", self.base.clock()))
        return playback

    # ------------------------------------------------------------------------------ library
    async def nominate(self, actor: Actor, serial: str, *, reason: str, tags: list[str]) -> dict[str, Any]:
        """Raises: ForbiddenError (not the agent's own call / outside scope), NotFoundError, QaError (bad input)."""
        rec = await self._recording(serial)
        if not self.ev.may_see(actor, rec.agent_id, rec.queue_id):
            raise ForbiddenError(f"recording {serial} is not yours to nominate")
        _check_tags(tags)
        if not reason.strip():
            raise QaError("a nomination needs a reason", code="qa.reason_required")
        now = self.base.clock()
        who = f"{actor.role}:{actor.subject}"
        async with self.base.qa.transaction() as tx:
            rows = await tx.x.fetch_all(
                "INSERT INTO qa_library (recording_serial, agent_id, nominated_by, nominated_at, reason, tags, "
                "state, redactions) VALUES (?, ?, ?, ?, ?, ?, 'nominated', '[]') RETURNING entry_id",
                (serial, rec.agent_id, who, now, reason, json.dumps(tags, ensure_ascii=False)))
            entry_id = int(str(rows[0][0]))
            await tx.audit(f"library:{entry_id}", "nominated", who, now, {"serial": serial, "reason": reason})
        return await self.entry(actor, entry_id)

    async def review(self, actor: Actor, entry_id: int, *, approve: bool, comment: str, note: str = "",
                     tags: list[str] | None = None, redactions: list[list[float]] | None = None) -> dict[str, Any]:
        """Publish (approve) or reject a nomination; the reviewer is not the nominator.

        Raises:
            ForbiddenError (qa.reviewer_is_nominator, or not a supervisor/operator), StateError (qa.bad_transition),
            QaError (bad tags or spans).
        """
        self.ev.require_evaluator(actor)
        spans = _check_spans(redactions or [])
        if len(note) > _MAX_NOTE:
            raise QaError(f"note: at most {_MAX_NOTE} characters", code="qa.bad_note")
        if tags is not None:
            _check_tags(tags)
        now, who = self.base.clock(), f"{actor.role}:{actor.subject}"
        async with self.base.qa.transaction() as tx:
            entry = await self._row(tx, entry_id)
            if entry["nominated_by"] == who:
                raise ForbiddenError("the nominator may not review their own nomination",
                                     code="qa.reviewer_is_nominator")
            if entry["state"] != "nominated":
                raise StateError(f"entry {entry_id} is {entry['state']}", code="qa.bad_transition")
            state = "published" if approve else "rejected"
            await tx.x.execute(
                "UPDATE qa_library SET state = ?, reviewer = ?, reviewed_at = ?, review_comment = ?, note = ?, "
                "tags = ?, redactions = ? WHERE entry_id = ?",
                (state, who, now, comment, note, json.dumps(tags if tags is not None else entry["tags"],
                                                            ensure_ascii=False), json.dumps(spans), entry_id))
            await tx.audit(f"library:{entry_id}", state, who, now, {"comment": comment, "redactions": spans})
        if approve:
            text = (f"Good-call library: {entry['recording_serial']} was added. {note}".strip()
                    + f" / 优秀录音库新增录音 {entry['recording_serial']}")
            if self.notify is not None:
                self.notify(text, now)
            self.base.publish_event("qa.library.published", {
                "entry_id": entry_id, "recording_serial": entry["recording_serial"], "note": note,
                "tags": tags if tags is not None else entry["tags"]})
        return await self.entry(actor, entry_id)

    async def retire(self, actor: Actor, entry_id: int, *, reason: str) -> dict[str, Any]:
        """Raises: ForbiddenError, StateError (only a published entry retires)."""
        self.ev.require_evaluator(actor)
        now, who = self.base.clock(), f"{actor.role}:{actor.subject}"
        async with self.base.qa.transaction() as tx:
            changed = await tx.x.execute("UPDATE qa_library SET state = 'retired', retired_at = ?, retired_by = ? "
                                         "WHERE entry_id = ? AND state = 'published'", (now, who, entry_id))
            if changed != 1:
                entry = await self._row(tx, entry_id)
                raise StateError(f"entry {entry_id} is {entry['state']}", code="qa.bad_transition")
            await tx.audit(f"library:{entry_id}", "retired", who, now, {"reason": reason})
        return await self.entry(actor, entry_id)

    async def _row(self, tx: QaTx, entry_id: int) -> dict[str, Any]:
        rows = await tx.x.fetch_all(f"SELECT {_LIB_COLS} FROM qa_library WHERE entry_id = ?", (entry_id,))
        if not rows:
            raise NotFoundError(f"no library entry {entry_id}")
        return _entry(rows[0])

    async def entry(self, actor: Actor, entry_id: int) -> dict[str, Any]:
        """One entry: agents see published ones (and their own nominations). Raises: NotFoundError."""
        async with self.base.qa.transaction() as tx:
            e = await self._row(tx, entry_id)
            views = await tx.x.fetch_all("SELECT COUNT(*) FROM qa_library_views WHERE entry_id = ?", (entry_id,))
            audit = await tx.audit_of(f"library:{entry_id}")
        if not _visible(actor, e):
            raise NotFoundError(f"no library entry {entry_id}")
        return e | {"views": int(str(views[0][0])), "audit": audit if actor.role != "agent" else []}

    async def entries(self, actor: Actor, *, state: str | None = None) -> list[dict[str, Any]]:
        async with self.base.qa.transaction() as tx:
            rows = await tx.x.fetch_all(f"SELECT {_LIB_COLS} FROM qa_library ORDER BY entry_id DESC")
        return [e for e in map(_entry, rows) if _visible(actor, e) and (state is None or e["state"] == state)]


_LIB_COLS = ("entry_id, recording_serial, agent_id, nominated_by, nominated_at, reason, tags, state, reviewer, "
             "reviewed_at, review_comment, note, redactions, retired_at, retired_by")


def _entry(r: Any) -> dict[str, Any]:
    names = [c.strip() for c in _LIB_COLS.split(",")]
    e = dict(zip(names, r, strict=True))
    e["entry_id"] = int(e["entry_id"])
    e["tags"], e["redactions"] = json.loads(e["tags"]), json.loads(e["redactions"])
    return e


def _visible(actor: Actor, e: dict[str, Any]) -> bool:
    if actor.role != "agent":
        return True
    return bool(e["state"] == "published" or e["nominated_by"] == f"agent:{actor.subject}")


def _printable(text: str, limit: int = 80) -> str:
    return (text if text.isprintable() else text.encode("unicode_escape").decode("ascii"))[:limit]


def _check_tags(tags: Any) -> None:
    if not isinstance(tags, list) or len(tags) > _MAX_TAGS or not all(
            isinstance(t, str) and 0 < len(t) <= 40 for t in tags):
        raise QaError(f"tags: at most {_MAX_TAGS} texts of 1-40 characters", code="qa.bad_tags")


def _check_spans(spans: Any) -> list[list[float]]:
    ok = isinstance(spans, list) and all(
        isinstance(s, list) and len(s) == 2 and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                      for v in s) and 0 <= s[0] < s[1] for s in spans)
    if not ok:
        raise QaError("redactions: a list of [start_s, end_s] spans with 0 <= start < end",
                      code="qa.bad_redactions")
    return [[float(a), float(b)] for a, b in sorted(spans)]


def wav_playback(path: Path, layout: WavLayout, ch: Channel, range_header: str | None,
                 redactions: list[tuple[float, float]] | None = None) -> tuple[Playback, tuple[int, int] | None]:
    """The answer to one (range) request for a WAV file whose ``layout`` was read (:func:`read_layout`): the
    playback, and the byte range served (None: the whole file). Also serves voicemail messages.

    Raises:
        RangeNotSatisfiable: the range lies outside the audio (416).
    """
    total = output_size(layout, ch)
    rng = parse_range(range_header, total)
    first, last = rng if rng is not None else (0, total - 1)
    headers = {"Content-Type": "audio/wav", "Accept-Ranges": "bytes", "Content-Length": str(last - first + 1),
               "Cache-Control": "no-store"}
    if rng is not None:
        headers["Content-Range"] = f"bytes {first}-{last}/{total}"
    return Playback(status=206 if rng is not None else 200, headers=headers,
                    chunks=_chunks(path, layout, ch, first, last, redactions or [])), rng


def read_layout(path: Path) -> WavLayout:
    """The layout of a WAV file (blocking: run it in a thread). Raises: OSError, BadRecording."""
    return _layout(path)


def _layout(path: Path) -> WavLayout:
    with open(path, "rb") as fh:
        head = fh.read(_HEAD)
        size = os.fstat(fh.fileno()).st_size
    return parse_wav_header(head, size)


def _read(path: Path, offset: int, n: int) -> bytes:
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(n)


async def _chunks(path: Path, layout: WavLayout, ch: Channel, first: int, last: int,
                  redactions: list[tuple[float, float]]) -> AsyncIterator[bytes]:
    width = layout.channels * 2
    bpf = width if ch is Channel.BOTH else 2
    pos = first
    while pos <= last:
        if pos < 44:
            end = min(last, 43)
        else:
            end = min(last, 44 + ((pos - 44) // bpf + _CHUNK_FRAMES) * bpf - 1)
        span = frames_for(layout, ch, pos, end)
        frames, f0 = b"", 0
        if span is not None:
            f0, f1 = span
            frames = await asyncio.to_thread(_read, path, layout.data_offset + f0 * width, (f1 - f0) * width)
        yield render(layout, ch, pos, end, frames, f0, redactions)
        pos = end + 1
