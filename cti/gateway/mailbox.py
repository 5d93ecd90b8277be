"""A connection's bounded outgoing queue: events drop the oldest event when full, replies are never dropped.

Only events count against the bound: control frames (hello, replies, and the events replayed after a resume, which
must arrive exactly once) are kept whatever their number, and never make a live event drop.

It also tracks whether the queue is *full* (the client is not reading fast enough): ``full`` is set when an event
finds it full and cleared (``drained`` set) once the writer has taken a frame again, so the connection can
disconnect a client whose queue stays full for too long.
"""

from __future__ import annotations

import asyncio
from collections import deque

from cti.errors import SettingsError
from cti.gateway.frames import OutFrame

__all__ = ["Mailbox"]


class Mailbox:
    """Frames waiting to be sent to one client."""

    def __init__(self, maxsize: int) -> None:
        if maxsize < 1:
            raise SettingsError("maxsize must be at least 1")
        self.maxsize = maxsize
        self.dropped = 0
        self._events = 0  # droppable frames queued
        self._frames: deque[tuple[bool, OutFrame]] = deque()
        self._ready = asyncio.Event()
        self.full = asyncio.Event()
        self.drained = asyncio.Event()
        self.drained.set()

    def __len__(self) -> int:
        return len(self._frames)

    def offer_event(self, frame: OutFrame) -> None:
        """Queue an event frame, dropping the oldest queued event if the mailbox is full."""
        if self._events >= self.maxsize:
            self.full.set()
            self.drained.clear()
            for index, (droppable, _) in enumerate(self._frames):
                if droppable:
                    del self._frames[index]
                    break
            self._events -= 1
            self.dropped += 1
        self._frames.append((True, frame))
        self._events += 1
        self._ready.set()

    def put_reply(self, frame: OutFrame) -> None:
        """Queue a control frame (hello, reply, error); never dropped."""
        self._frames.append((False, frame))
        self._ready.set()

    async def get(self) -> OutFrame:
        """Wait for the next frame to send."""
        while not self._frames:
            self._ready.clear()
            await self._ready.wait()
        droppable, frame = self._frames.popleft()
        if droppable:
            self._events -= 1
        if self.full.is_set() and self._events < self.maxsize:
            self.full.clear()
            self.drained.set()
        return frame
