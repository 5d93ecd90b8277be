"""One message being recorded: the asyncio side of a voicemail node (docs/voicemail.md).

The caller's RTP reaches :meth:`VoicemailTake.push` (called by :class:`cti.call.media.CallMedia` on the loop): the
encoded payload is queued for the call recorder (:class:`sip.media.aio.Recording`, which decodes, places by RTP
timestamp and writes in a worker thread; the caller is the left channel, the right one stays silent) and the
decoded frame feeds the :class:`~cti.voicemail.model.SilenceDetector`. :meth:`wait` returns on ``#``
(:meth:`stop`), on silence or at ``max_seconds``; :meth:`keep` finalises the WAV and returns the message.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import wave
from pathlib import Path

import structlog

from cti.voicemail.model import SilenceDetector, VoicemailMessage
from sip.media import Channel, RecordingInfo, RecordingSerial, TapFrame
from sip.media.aio import Recording
from sip.rtp import AudioReceived, Codec

__all__ = ["VoicemailTake"]

log = structlog.get_logger(__name__)

FLUSH_INTERVAL = 0.5
"""Seconds between two writes of the queued audio while recording (the recorder queues at most 40 s of one leg)."""


def _frames(path: Path) -> int:
    with wave.open(str(path), "rb") as wav:
        return wav.getnframes()


class VoicemailTake:
    """A message being recorded. Create with :meth:`open`; every method is for the event loop."""

    def __init__(self, recording: Recording, directory: Path, info: RecordingInfo, *, mailbox: str,
                 queue: str | None, caller: str, started: float, silence_seconds: float) -> None:
        self.recording = recording
        self.directory = directory
        self.info = info
        self.mailbox = mailbox
        self.queue = queue
        self.caller = caller
        self.started = started
        self.detector = SilenceDetector(silence_seconds)
        self._loop = asyncio.get_running_loop()
        self.detector.start(self._loop.time())
        self._stop = asyncio.Event()
        self.packets = 0

    @classmethod
    async def open(cls, directory: Path, *, message_id: str, call_id: str, mailbox: str, queue: str | None,
                   caller: str, started: float, silence_seconds: float) -> VoicemailTake:
        """Create the message's part files (in a worker thread) and start counting silence.

        Raises:
            RecordingError: the files cannot be created.
        """
        await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
        iso = dt.datetime.fromtimestamp(started, dt.UTC).isoformat()
        info = RecordingInfo(serial=RecordingSerial(message_id), call_id=call_id, started_at=iso,
                             parties={"caller": caller, "mailbox": mailbox}, queue=queue)
        recording = await Recording.open(directory, info, clock_start=asyncio.get_running_loop().time())
        return cls(recording, directory, info, mailbox=mailbox, queue=queue, caller=caller, started=started,
                   silence_seconds=silence_seconds)

    @property
    def message_id(self) -> str:
        return str(self.info.serial)

    def push(self, event: AudioReceived, codec: Codec) -> None:
        """One audio packet of the caller (on the loop: only queued here). ``codec`` is the negotiated one; a
        packet of the other G.711 law (some phones send the one they were not asked for) is decoded as sent."""
        if event.pcm is None:  # not G.711: nothing the recorder can decode
            return
        if event.payload_type in (Codec.PCMU, Codec.PCMA):
            codec = Codec(event.payload_type)
        now = self._loop.time()
        self.packets += 1
        self.recording.push_tap([TapFrame(Channel.CALLER, codec, event.ssrc, event.timestamp, event.payload, now)])
        self.detector.push(event.pcm, now)

    def stop(self) -> None:
        """End the recording now (the caller pressed ``#``)."""
        self._stop.set()

    async def wait(self, max_seconds: float) -> str:
        """Until the caller presses ``#`` (``"key"``), is silent long enough (``"silence"``) or ``max_seconds``
        pass (``"max_seconds"``); returns which. Writes the queued audio every :data:`FLUSH_INTERVAL` meanwhile.

        Raises:
            RecordingError: a write failed.
        """
        deadline = self._loop.time() + max_seconds
        while True:
            now = self._loop.time()
            if self._stop.is_set():
                return "key"
            if self.detector.expired(now):
                return "silence"
            if now >= deadline:
                return "max_seconds"
            wake = min(deadline, self.detector.get_timer() or deadline, now + FLUSH_INTERVAL)
            try:
                async with asyncio.timeout(max(0.0, wake - now)):
                    await self._stop.wait()
            except TimeoutError:
                # Write what is queued (in a thread). Shielded: a hang-up that cancels this wait must not cut a
                # write in half, since the call's end then finalises the same file (:meth:`keep`).
                await asyncio.shield(self.recording.flush())

    async def keep(self, ended: float) -> VoicemailMessage:
        """Finalise the WAV (``ended``: wall-clock end) and return the message to store.

        Raises:
            RecordingError: the file cannot be finalised.
        """
        path = await self.recording.close(dt.datetime.fromtimestamp(ended, dt.UTC).isoformat())
        seconds = await asyncio.to_thread(_frames, path) / 8000
        log.info("voicemail.message.recorded", voicemail_id=self.message_id, mailbox=self.mailbox,
                 seconds=round(seconds, 3), packets=self.packets)
        return VoicemailMessage(id=self.message_id, call_id=self.info.call_id, mailbox=self.mailbox,
                                queue=self.queue, caller=self.caller, started=self.started, duration_s=seconds,
                                path=path.name)
