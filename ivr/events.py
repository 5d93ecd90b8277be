"""What goes into an IVR :class:`~ivr.engine.Session` (events) and what comes out (commands).

Events are past tense and describe what the channel or the CRM did; commands are
imperative and tell the adapter what to do. All are frozen data with no behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import NewType

from ivr.flow import PromptName, Value
from ivr.record import InputRecord

LookupId = NewType("LookupId", int)
DTMF_KEYS = frozenset("0123456789*#ABCD")


# -- events in --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrEvent:
    """Base class of events fed to a session."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PromptFinished(IvrEvent):
    """The prompts of the last :class:`PlayPrompt` have all been played (not sent after :class:`StopPrompt`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DigitReceived(IvrEvent):
    """One DTMF key (RFC 4733 event or SIP INFO), in the order the caller pressed them."""

    digit: str

    def __post_init__(self) -> None:
        if self.digit not in DTMF_KEYS:
            raise ValueError(f"not a DTMF key: {self.digit!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupCompleted(IvrEvent):
    """The CRM answered a :class:`StartLookup` with a JSON object."""

    lookup_id: LookupId
    result: Mapping[str, object]


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupFailed(IvrEvent):
    """The CRM look-up timed out, failed or answered something unusable."""

    lookup_id: LookupId
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VoicemailRecorded(IvrEvent):
    """The recording of a :class:`RecordVoicemail` ended (``#``, silence, ``max_seconds``) and was kept."""

    seconds: float


@dataclass(frozen=True, slots=True, kw_only=True)
class CallerHungUp(IvrEvent):
    """The caller left; the session finishes without further commands."""


# -- commands out -----------------------------------------------------------------------------


class HangupReason(Enum):
    FLOW_ENDED = "flow_ended"
    STEP_LIMIT = "step_limit"


@dataclass(frozen=True, slots=True, kw_only=True)
class IvrCommand:
    """Base class of commands a session returns."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayPrompt(IvrCommand):
    """Play these prompts in order; with ``barge_in`` a digit may interrupt (the session sends StopPrompt)."""

    prompts: tuple[PromptName, ...]
    barge_in: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class StopPrompt(IvrCommand):
    """Stop the prompt in progress; no PromptFinished is expected for it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartLookup(IvrCommand):
    """HTTP GET ``url`` with ``params``; answer with LookupCompleted or LookupFailed within ``timeout``."""

    lookup_id: LookupId
    url: str
    params: Mapping[str, str]
    timeout: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TagCall(IvrCommand):
    """Attach tags to the call (the merged, current tags of the call)."""

    vip: bool
    priority: int
    reason: str | None
    skills: Mapping[str, int]


@dataclass(frozen=True, slots=True, kw_only=True)
class RaiseAlert(IvrCommand):
    """Tell supervisors about this call (delivery is the call controller's business)."""

    kind: str
    message: str
    caller: str


@dataclass(frozen=True, slots=True, kw_only=True)
class EnqueueCall(IvrCommand):
    """Hand the call to the ACD. ``variables`` is what the caller entered and the CRM returned (screen pop)."""

    queue: str
    skills: Mapping[str, int]
    priority: int
    vip: bool
    reason: str | None
    variables: Mapping[str, Value] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordVoicemail(IvrCommand):
    """Answer the caller if needed, beep (with ``beep``), record the caller's audio for ``mailbox`` until
    :class:`StopVoicemail`, ``silence_seconds`` of silence or ``max_seconds``; then answer with
    :class:`VoicemailRecorded`. A caller who hangs up still leaves the message."""

    mailbox: str
    max_seconds: float
    silence_seconds: float = 5.0
    beep: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class StopVoicemail(IvrCommand):
    """End the recording in progress now (the caller pressed ``#``); VoicemailRecorded follows."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTaken(IvrCommand):
    """The caller answered a menu or collect node (rightly, wrongly or not at all): tell the world."""

    record: InputRecord


@dataclass(frozen=True, slots=True, kw_only=True)
class Hangup(IvrCommand):
    reason: HangupReason


Command = (
    PlayPrompt | StopPrompt | StartLookup | TagCall | RaiseAlert | EnqueueCall | RecordVoicemail | StopVoicemail
    | InputTaken | Hangup
)
