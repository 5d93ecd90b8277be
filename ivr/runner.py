"""The asyncio adapter: binds one :class:`~ivr.engine.Session` to a media channel and the CRM.

The runner owns everything the pure session must not: the clock, one timer, the prompt
playback task, the CRM HTTP look-up (aiohttp, bounded by ``asyncio.timeout``) and the
translation of commands into :class:`IvrChannel` calls. The media layer feeds caller
events in with :meth:`IvrRunner.deliver` (``DigitReceived``, ``CallerHungUp``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, assert_never

import aiohttp
import structlog

from ivr.engine import Session
from ivr.events import (
    CallerHungUp,
    Command,
    EnqueueCall,
    Hangup,
    InputTaken,
    IvrEvent,
    LookupCompleted,
    LookupFailed,
    PlayPrompt,
    PromptFinished,
    RaiseAlert,
    RecordVoicemail,
    StartLookup,
    StopPrompt,
    StopVoicemail,
    TagCall,
    VoicemailRecorded,
)
from ivr.record import CallRecord, InputRecord

log = structlog.get_logger("ivr")

CHANNEL_TIMEOUT = 10.0  # bound on every channel call except play (which the session guards)
MAX_LOOKUP_BYTES = 64 * 1024


class IvrChannel(Protocol):
    """What the media/call layer must offer an IVR runner. Every method may be cancelled."""

    async def play(self, files: Sequence[Path]) -> None:
        """Play the WAV files in order and return when the last one ends; cancellation stops playback."""

    async def tag(self, command: TagCall) -> None:
        """Attach VIP/priority/reason/skills tags to the call."""

    async def raise_alert(self, command: RaiseAlert) -> None:
        """Pass a supervisor alert on (delivery belongs to the call controller)."""

    async def enqueue(self, command: EnqueueCall) -> None:
        """Hand the call to the ACD queue, with the variables for the screen pop."""

    async def record_voicemail(self, command: RecordVoicemail) -> float:
        """Record a message for ``command.mailbox`` (answering the caller first if needed) until
        :meth:`stop_voicemail`, silence or ``max_seconds``; keep it and return its length in seconds.
        When cancelled (the caller hung up) the call still keeps what was recorded."""

    async def stop_voicemail(self) -> None:
        """End the recording in progress (the caller pressed ``#``); :meth:`record_voicemail` returns."""

    async def input_taken(self, record: InputRecord) -> None:
        """The caller answered (or failed to answer) a menu or collect node."""

    async def hangup(self) -> None:
        """Hang the call up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _PlayDone(IvrEvent):
    """Internal: the play task of a given generation ended (stale ones are dropped)."""

    generation: int


async def fetch_lookup(http: aiohttp.ClientSession, command: StartLookup) -> LookupCompleted | LookupFailed:
    """Run one CRM look-up: GET, 2xx, a JSON object of at most 64 KiB, within ``command.timeout``."""
    lookup_id = command.lookup_id
    try:
        async with asyncio.timeout(command.timeout):
            async with http.get(command.url, params=dict(command.params)) as response:
                if not 200 <= response.status < 300:
                    return LookupFailed(lookup_id=lookup_id, reason=f"http status {response.status}")
                body = await response.content.read(MAX_LOOKUP_BYTES + 1)
    except TimeoutError:
        return LookupFailed(lookup_id=lookup_id, reason="timeout")
    except aiohttp.ClientError as exc:
        return LookupFailed(lookup_id=lookup_id, reason=f"http error: {type(exc).__name__}")
    if len(body) > MAX_LOOKUP_BYTES:
        return LookupFailed(lookup_id=lookup_id, reason="response too large")
    try:
        data = json.loads(body)
    except ValueError:
        return LookupFailed(lookup_id=lookup_id, reason="response is not JSON")
    if not isinstance(data, dict):
        return LookupFailed(lookup_id=lookup_id, reason="response is not a JSON object")
    return LookupCompleted(lookup_id=lookup_id, result=data)


class IvrRunner:
    """Drives one session to its end. Create, call :meth:`run` in the call's task group, feed events."""

    def __init__(
        self,
        session: Session,
        channel: IvrChannel,
        *,
        prompt_dir: Path,
        http: aiohttp.ClientSession,
        call_id: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.session = session
        self.channel = channel
        self.prompt_dir = prompt_dir
        self.http = http
        self.call_id = call_id
        self._clock = clock
        # A list and a future made only while waiting, not an asyncio.Queue (four deques, ~2.5 KB a live call).
        self._events: list[IvrEvent] = []
        self._wakeup: asyncio.Future[None] | None = None
        self._play_task: asyncio.Task[None] | None = None
        self._lookup_task: asyncio.Task[None] | None = None
        self._record_task: asyncio.Task[None] | None = None
        self._generation = 0
        self._tg: asyncio.TaskGroup | None = None

    def deliver(self, event: IvrEvent) -> None:
        """Hand a caller event (a digit, a hang-up) to the session; never blocks."""
        self._events.append(event)
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    async def run(self) -> CallRecord:
        """Run the flow until the call leaves the IVR; return what was learnt about the call."""
        with structlog.contextvars.bound_contextvars(call_id=self.call_id):
            try:
                async with asyncio.TaskGroup() as tg:
                    self._tg = tg
                    try:
                        await self._execute(self.session.start(self._clock()))
                        while not self.session.finished:
                            await self._next()
                    finally:
                        self._cancel_tasks()
            except asyncio.CancelledError as exc:
                # The call ended while the flow ran (an IVR abandon). TaskGroup.__aexit__ (CPython 3.11-3.13)
                # re-raises the cancellation from its own frame, which keeps it in a local: a reference cycle
                # through that frame, its traceback and ours, holding this runner and its call until a full
                # collection (off under load: cti.app.tune_gc). A cancellation's traceback says nothing.
                exc.__traceback__ = None
                raise
            finally:
                self._tg = None
        return self.session.record

    async def _next_event(self) -> IvrEvent:
        """The oldest event delivered, waiting for one when there is none."""
        while not self._events:
            self._wakeup = asyncio.get_running_loop().create_future()
            try:
                await self._wakeup
            finally:
                self._wakeup = None
        return self._events.pop(0)

    async def _next(self) -> None:
        deadline = self.session.get_timer()
        delay = None if deadline is None else max(0.0, deadline - self._clock())
        try:
            async with asyncio.timeout(delay):
                event = await self._next_event()
        except TimeoutError:
            await self._execute(self.session.handle_timer(self._clock()))
            return
        if isinstance(event, _PlayDone):
            if event.generation != self._generation:
                return
            event = PromptFinished()
        if isinstance(event, CallerHungUp):
            self._cancel_tasks()
        await self._execute(self.session.handle(event, self._clock()))

    def _cancel_tasks(self) -> None:
        for task in (self._play_task, self._lookup_task, self._record_task):
            if task is not None and not task.done():
                task.cancel()
        self._play_task = self._lookup_task = self._record_task = None

    async def _play(self, files: list[Path], generation: int) -> None:
        await self.channel.play(files)
        self.deliver(_PlayDone(generation=generation))

    async def _record(self, command: RecordVoicemail) -> None:
        seconds = await self.channel.record_voicemail(command)
        self.deliver(VoicemailRecorded(seconds=seconds))

    async def _lookup(self, command: StartLookup) -> None:
        result = await fetch_lookup(self.http, command)
        self.deliver(result)

    async def _execute(self, commands: list[Command]) -> None:
        assert self._tg is not None
        for command in commands:
            match command:
                case PlayPrompt():
                    self._generation += 1
                    if self._play_task is not None:
                        self._play_task.cancel()
                    files = [self.prompt_dir / f"{name}.wav" for name in command.prompts]
                    self._play_task = self._tg.create_task(
                        self._play(files, self._generation), name=f"ivr-play-{self.call_id}"
                    )
                case StopPrompt():
                    self._generation += 1
                    if self._play_task is not None:
                        self._play_task.cancel()
                        self._play_task = None
                case StartLookup():
                    self._lookup_task = self._tg.create_task(self._lookup(command), name=f"ivr-lookup-{self.call_id}")
                case TagCall():
                    await self._bounded(self.channel.tag(command))
                case RaiseAlert():
                    await self._bounded(self.channel.raise_alert(command))
                case EnqueueCall():
                    await self._bounded(self.channel.enqueue(command))
                case InputTaken():
                    await self._bounded(self.channel.input_taken(command.record))
                case RecordVoicemail():
                    # Bounded by the channel (max_seconds) and by the session's back-stop timer.
                    self._record_task = self._tg.create_task(self._record(command),
                                                             name=f"ivr-voicemail-{self.call_id}")
                case StopVoicemail():
                    await self._bounded(self.channel.stop_voicemail())
                case Hangup():
                    await self._bounded(self.channel.hangup())
                case _:
                    assert_never(command)

    async def _bounded(self, awaitable: Awaitable[None]) -> None:
        async with asyncio.timeout(CHANNEL_TIMEOUT):
            await awaitable
