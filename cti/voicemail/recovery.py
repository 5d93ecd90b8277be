"""Messages a crash cut short: finalised at start-up and stored like any other (docs/voicemail.md).

A message being recorded is ``.<id>.wav.part`` and ``.<id>.json.part`` in the voicemail directory (the layout of
every recording, :mod:`sip.media.recfiles`). At start-up :func:`recover_messages` finalises what a crash left
(the recorder's crash rule: a part with audio is kept, one without is removed) and returns the messages to store;
the server then keeps each like a message that ended normally (row, ``voicemail.left``). Blocking: run it in a
worker thread, before the first call.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import structlog

from cti.voicemail.model import VoicemailMessage
from sip.media import RecoveryAction, recover_partials

__all__ = ["recover_messages"]

log = structlog.get_logger(__name__)


def _message(wav: Path) -> VoicemailMessage:
    """The message of a finalised WAV, from its sidecar. Raises: OSError, ValueError, KeyError, TypeError."""
    meta = json.loads(wav.with_suffix(".json").read_text(encoding="utf-8"))
    parties = meta["parties"]
    queue = meta.get("queue")
    return VoicemailMessage(id=str(meta["serial"]), call_id=str(meta["call_id"]), mailbox=str(parties["mailbox"]),
                            queue=None if queue is None else str(queue), caller=str(parties["caller"]),
                            started=dt.datetime.fromisoformat(str(meta["started_at"])).timestamp(),
                            duration_s=float(meta["duration_s"]), path=wav.name)


def recover_messages(directory: Path) -> list[VoicemailMessage]:
    """Finalise the messages a crash left in ``directory`` and return them (oldest first).

    Raises:
        RecordingError: the directory cannot be listed or a file cannot be renamed.
    """
    messages: list[VoicemailMessage] = []
    for item in recover_partials(directory):
        if item.action is not RecoveryAction.FINALISED:
            log.warning("voicemail.message.unrecoverable", voicemail_id=item.serial)
            continue
        try:
            messages.append(_message(item.path))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("voicemail.message.unreadable", voicemail_id=item.serial, error=repr(exc))
            continue
        log.info("voicemail.message.recovered", voicemail_id=item.serial)
    return sorted(messages, key=lambda m: m.started)
