"""The browser phone's pure parts: its states and their transition table, what a page's hang-up means in each
state, who is calling (from the node's INVITE), and the 20 ms reframing of PCM between WebRTC and RTP.

No asyncio, no sockets, no clock: the adapter (:mod:`cti.phone.phone`) feeds events in and acts on the results.
RFC 3261 §13.3.1.3 (a UAS that does not answer: 486 Busy Here / 603 Decline), §15 (BYE).

Errors::

    ControlError (cti.errors)
     └── PhoneError     code: phone_off | phone_in_call | no_call | phone_busy   (status_hint-like ``status``)
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from cti.errors import ControlError
from sip.errors import RemoteSipError
from sip.message import Request
from sip.uri import SipUri

__all__ = ["FRAME_BYTES", "TRANSITIONS", "Caller", "HangupAction", "PhoneError", "PhoneInput", "PhoneState",
           "Reframer", "caller_of", "hangup_action", "next_state"]

FRAME_BYTES: Final = 320
"""One 20 ms frame of 16-bit mono PCM at 8 kHz: what the node's RTP endpoint sends as one G.711 packet."""


class PhoneError(ControlError):
    """A phone command that cannot be carried out in the phone's state."""


class PhoneState(enum.Enum):
    OFF = "off"  # no web phone: no binding in the registrar
    READY = "ready"  # bound in the registrar, media path to the page up, no call
    RINGING = "ringing"  # the node's INVITE is ringing in the page (180 sent)
    IN_CALL = "in_call"  # answered (200 sent) until a BYE either way


class PhoneInput(enum.Enum):
    TURNED_ON = "turned_on"  # the page's offer was answered and the binding made
    INVITED = "invited"  # an INVITE for the agent arrived (only READY takes one: the others answer 486)
    ANSWERED = "answered"  # the page answered (or auto-answer)
    ENDED = "ended"  # CANCEL, BYE either way, the page declined, a transaction timed out
    TURNED_OFF = "turned_off"  # the page turned it off, its connection ended, the peer connection failed


TRANSITIONS: Final[dict[tuple[PhoneState, PhoneInput], PhoneState]] = {
    (PhoneState.OFF, PhoneInput.TURNED_ON): PhoneState.READY,
    (PhoneState.READY, PhoneInput.INVITED): PhoneState.RINGING,
    (PhoneState.RINGING, PhoneInput.ANSWERED): PhoneState.IN_CALL,
    (PhoneState.RINGING, PhoneInput.ENDED): PhoneState.READY,
    (PhoneState.IN_CALL, PhoneInput.ENDED): PhoneState.READY,
    (PhoneState.READY, PhoneInput.TURNED_OFF): PhoneState.OFF,
    (PhoneState.RINGING, PhoneInput.TURNED_OFF): PhoneState.OFF,
    (PhoneState.IN_CALL, PhoneInput.TURNED_OFF): PhoneState.OFF,
}
"""Every legal (state, input) pair and the state it leads to; anything else is refused."""

_REFUSALS: Final[dict[PhoneInput, tuple[str, str]]] = {
    PhoneInput.INVITED: ("phone_busy", "the phone already has a call"),
    PhoneInput.ANSWERED: ("no_call", "nothing is ringing"),
    PhoneInput.ENDED: ("no_call", "no call to end"),
    PhoneInput.TURNED_ON: ("phone_in_call", "the phone is already on"),
    PhoneInput.TURNED_OFF: ("phone_off", "the phone is off"),
}


def next_state(state: PhoneState, event: PhoneInput) -> PhoneState:
    """The state ``event`` leads to from ``state``.

    Raises:
        PhoneError: the pair is not in :data:`TRANSITIONS` (409, with a code saying why).
    """
    target = TRANSITIONS.get((state, event))
    if target is None:
        code, message = _REFUSALS[event]
        raise PhoneError(code, f"{message} (phone {state.value})", status=409)
    return target


class HangupAction(enum.Enum):
    DECLINE = "decline"  # a ringing INVITE: 603 Decline (§21.6.2: the user does not want to take it)
    BYE = "bye"  # an answered call: BYE (§15.1.1)


def hangup_action(state: PhoneState) -> HangupAction:
    """What the page's *Hang up* does in ``state``.

    Raises:
        PhoneError: ``no_call`` when nothing rings and no call is up.
    """
    match state:
        case PhoneState.RINGING:
            return HangupAction.DECLINE
        case PhoneState.IN_CALL:
            return HangupAction.BYE
        case PhoneState.OFF | PhoneState.READY:
            raise PhoneError("no_call", f"no call to hang up (phone {state.value})", status=409)


@dataclass(frozen=True, slots=True, kw_only=True)
class Caller:
    """Who rings, as the page shows it: the node's call id (``X-CTI-Call-ID``) and the number of the From."""

    call_id: str | None
    number: str | None


def caller_of(invite: Request) -> Caller:
    """Who the node's INVITE is from (:func:`cti.call.useragent.invite_phone` puts the caller's number in the From
    user, its name in the display name, the node's call id in ``X-CTI-Call-ID``)."""
    number: str | None = None
    try:
        origin = invite.from_
    except RemoteSipError:  # a From that does not parse names no caller; the INVITE is still answerable
        origin = None
    if origin is not None:
        user = origin.uri.user if isinstance(origin.uri, SipUri) else None
        number = user or origin.display or None
    call_id = invite.headers.get("X-CTI-Call-ID")
    return Caller(call_id=call_id.strip()[:128] if call_id else None, number=number[:64] if number else None)


class Reframer:
    """Cuts a stream of 16-bit PCM into :data:`FRAME_BYTES` frames, whatever the sizes of the pieces it is given
    (a browser's decoder gives 10 or 20 ms, Opus 48 kHz resampled gives odd sizes). Keeps at most ``max_bytes``
    (older audio is dropped: a late frame is worse than a lost one)."""

    def __init__(self, max_bytes: int = FRAME_BYTES * 10) -> None:
        self._buffer = bytearray()
        self._max = max_bytes
        self.dropped = 0

    def push(self, pcm: bytes) -> None:
        self._buffer += pcm
        excess = len(self._buffer) - self._max
        if excess > 0:
            excess += excess % 2  # keep the samples aligned
            del self._buffer[:excess]
            self.dropped += excess

    def frames(self) -> Iterator[bytes]:
        """The whole frames buffered so far, oldest first (the rest waits for more)."""
        while len(self._buffer) >= FRAME_BYTES:
            frame = bytes(self._buffer[:FRAME_BYTES])
            del self._buffer[:FRAME_BYTES]
            yield frame
