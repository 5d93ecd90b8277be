"""Voicemail messages, pure: the message record, the beep, the silence rule, the mailbox's queue (docs/voicemail.md).

Nothing here does I/O or reads a clock: times are passed in.
"""

from __future__ import annotations

import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sip.media import Tone

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

__all__ = ["BEEP", "SILENCE_RMS", "SilenceDetector", "VoicemailMessage", "mailbox_queue", "message_id"]

BEEP = Tone(frequency=1000.0, duration=0.4, amplitude=0.25)
"""The tone before the recording starts: 1 kHz for 0.4 s at a quarter of full scale (about -12 dBFS)."""
SILENCE_RMS = 250
"""RMS (16-bit linear) below which a frame of the caller counts as silence: the comfort noise of a phone is
well below it, speech well above (SIPp's g711a.pcap speech is > 300 over a few seconds)."""


class SilenceDetector:
    """Ends a recording once the caller has been silent for ``seconds`` (from the start, or from the last frame
    louder than ``threshold``). Packets that never come count as silence too: see :meth:`get_timer`."""

    def __init__(self, seconds: float, *, threshold: int = SILENCE_RMS) -> None:
        if seconds <= 0:
            raise ValueError("silence seconds must be positive")
        self.seconds = seconds
        self.threshold = threshold
        self.last_voice: float | None = None
        self.voiced_frames = 0

    def start(self, now: float) -> None:
        """Recording started at ``now``: the silence count starts too."""
        self.last_voice = now

    def push(self, pcm: bytes, now: float) -> None:
        """One frame of the caller's 16-bit PCM that arrived at ``now``."""
        if pcm and audioop.rms(pcm, 2) >= self.threshold:
            self.last_voice = now
            self.voiced_frames += 1

    def get_timer(self) -> float | None:
        """When the silence rule ends the recording, unless the caller speaks before."""
        return None if self.last_voice is None else self.last_voice + self.seconds

    def expired(self, now: float) -> bool:
        deadline = self.get_timer()
        return deadline is not None and now >= deadline


def message_id(call_id: str, started: float) -> str:
    """A message's id: ``vm-`` + UTC date + a digest of the call id and start (stable, file-name safe)."""
    import datetime as dt
    import hashlib

    day = dt.datetime.fromtimestamp(started, dt.UTC).strftime("%Y%m%d")
    digest = hashlib.sha256(f"{call_id}/{started!r}".encode()).hexdigest()[:12]
    return f"vm-{day}-{digest}"


def mailbox_queue(mailbox: str, queues: Collection[str]) -> str | None:
    """The queue a mailbox belongs to: the queue of the same name, if there is one (its supervisors see the
    mailbox); else None (only the operator does)."""
    return mailbox if mailbox in queues else None


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailMessage:
    """One message left by a caller. ``path`` is relative to the voicemail directory."""

    id: str
    call_id: str
    mailbox: str
    queue: str | None
    caller: str
    started: float
    duration_s: float
    path: str
    heard: bool = False
    heard_at: float | None = None
    heard_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "call_id": self.call_id, "mailbox": self.mailbox, "queue": self.queue,
                "caller_number": self.caller, "started": self.started, "duration_s": round(self.duration_s, 3),
                "heard": self.heard, "heard_at": self.heard_at, "heard_by": self.heard_by}

    def event_data(self) -> dict[str, Any]:
        """The data of ``voicemail.left``."""
        return {"voicemail_id": self.id, "call_id": self.call_id, "mailbox": self.mailbox, "queue": self.queue,
                "caller_number": self.caller, "started": self.started, "duration_s": round(self.duration_s, 3)}
