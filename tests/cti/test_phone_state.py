"""cti.phone.state: the browser phone's pure parts (no event loop): every (state, input) pair, the page's hang-up,
who is calling, and the 20 ms reframing."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cti.errors import ControlError
from cti.phone.state import (
    FRAME_BYTES,
    TRANSITIONS,
    HangupAction,
    PhoneError,
    PhoneInput,
    PhoneState,
    Reframer,
    caller_of,
    hangup_action,
    next_state,
)
from sip import Headers, Request, parse_uri

LEGAL = {
    (PhoneState.OFF, PhoneInput.TURNED_ON): PhoneState.READY,
    (PhoneState.READY, PhoneInput.INVITED): PhoneState.RINGING,
    (PhoneState.RINGING, PhoneInput.ANSWERED): PhoneState.IN_CALL,
    (PhoneState.RINGING, PhoneInput.ENDED): PhoneState.READY,
    (PhoneState.IN_CALL, PhoneInput.ENDED): PhoneState.READY,
    (PhoneState.READY, PhoneInput.TURNED_OFF): PhoneState.OFF,
    (PhoneState.RINGING, PhoneInput.TURNED_OFF): PhoneState.OFF,
    (PhoneState.IN_CALL, PhoneInput.TURNED_OFF): PhoneState.OFF,
}


@pytest.mark.parametrize(("state", "event"), list(itertools.product(PhoneState, PhoneInput)))
def test_every_state_and_input(state: PhoneState, event: PhoneInput) -> None:
    """The table is exactly the legal moves; every other pair is refused with a code, never half-applied."""
    if (state, event) in LEGAL:
        assert next_state(state, event) is LEGAL[state, event]
    else:
        with pytest.raises(PhoneError) as refused:
            next_state(state, event)
        assert isinstance(refused.value, ControlError) and refused.value.status == 409
        assert refused.value.code in {"phone_busy", "no_call", "phone_in_call", "phone_off"}
    assert TRANSITIONS == LEGAL


def test_a_second_invite_is_busy_and_answering_nothing_is_no_call() -> None:
    with pytest.raises(PhoneError, match="already has a call") as busy:
        next_state(PhoneState.RINGING, PhoneInput.INVITED)
    assert busy.value.code == "phone_busy"
    with pytest.raises(PhoneError) as nothing:
        next_state(PhoneState.READY, PhoneInput.ANSWERED)
    assert nothing.value.code == "no_call"


def test_hang_up_declines_a_ringing_call_and_byes_an_answered_one() -> None:
    assert hangup_action(PhoneState.RINGING) is HangupAction.DECLINE
    assert hangup_action(PhoneState.IN_CALL) is HangupAction.BYE
    for idle in (PhoneState.OFF, PhoneState.READY):
        with pytest.raises(PhoneError) as refused:
            hangup_action(idle)
        assert refused.value.code == "no_call"


def _invite(from_: str, *extra: tuple[str, str]) -> Request:
    headers = Headers()
    for name, value in (("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1"), ("From", from_),
                        ("To", "<sip:1003@127.0.0.1:5062>"), ("Call-ID", "c-1"), ("CSeq", "1 INVITE"), *extra):
        headers.add(name, value)
    return Request(method="INVITE", uri=parse_uri("sip:1003@127.0.0.1:5062"), headers=headers)


def test_caller_is_the_from_user_and_the_nodes_call_id() -> None:
    caller = caller_of(_invite('"Ann" <sip:5551234@127.0.0.1:5060>;tag=a', ("X-CTI-Call-ID", "call-42")))
    assert (caller.number, caller.call_id) == ("5551234", "call-42")
    withheld = caller_of(_invite('"Anonymous" <sip:127.0.0.1>;tag=a'))
    assert (withheld.number, withheld.call_id) == ("Anonymous", None)


def test_a_from_that_does_not_parse_names_no_caller() -> None:
    assert caller_of(_invite("<<<not an address")).number is None


@given(st.lists(st.binary(min_size=0, max_size=1000).map(lambda b: b[: len(b) // 2 * 2]), max_size=30))
def test_reframer_cuts_whole_frames_in_order(pieces: list[bytes]) -> None:
    reframer = Reframer(max_bytes=10**9)
    out = b""
    for piece in pieces:
        reframer.push(piece)
        frames = list(reframer.frames())
        assert all(len(f) == FRAME_BYTES for f in frames)
        out += b"".join(frames)
    stream = b"".join(pieces)
    assert out == stream[: len(stream) // FRAME_BYTES * FRAME_BYTES]


def test_reframer_drops_the_oldest_audio_past_its_bound() -> None:
    reframer = Reframer(max_bytes=FRAME_BYTES * 2)
    reframer.push(b"\x01\x00" * FRAME_BYTES)  # two frames of sample 1 ...
    reframer.push(b"\x02\x00" * (FRAME_BYTES // 2))  # ... then one of sample 2
    frames = list(reframer.frames())
    assert frames == [b"\x01\x00" * (FRAME_BYTES // 2), b"\x02\x00" * (FRAME_BYTES // 2)]  # the oldest went
    assert reframer.dropped == FRAME_BYTES
