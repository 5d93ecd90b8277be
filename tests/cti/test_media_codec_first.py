"""The agent is offered the caller's negotiated codec first, so both legs settle on one G.711 law
and the bridge forwards packets as they are (no decode/encode per packet)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from cti.call.media import CallMedia, MediaLeg
from sip.offer_answer import Direction, MediaParameters, accept_answer, build_offer
from sip.rtp import Codec
from sip.sdp import SessionDescription


def _media(caller_codec: Codec | None) -> CallMedia:
    media = CallMedia(host="127.0.0.1", ports=cast(Any, None), prompts=cast(Any, None), rtp_timeout=30.0,
                      on_digit=lambda d: None, on_timeout=lambda w: None)
    if caller_codec is not None:
        params = MediaParameters(codec=caller_codec, payload_type=int(caller_codec), telephone_event_pt=101,
                                 remote_addr="127.0.0.1", remote_port=40000, direction=Direction.SENDRECV, ptime=20,
                                 media_index=0)
        media.caller = MediaLeg(cast(Any, None), params, None)
    return media


@pytest.mark.parametrize("caller", [Codec.PCMU, Codec.PCMA])
def test_the_callers_codec_comes_first_and_an_agent_taking_its_first_choice_gets_it(caller: Codec) -> None:
    codecs = _media(caller).preferred_codecs()
    assert codecs[0] is caller and set(codecs) == {Codec.PCMU, Codec.PCMA}
    offer = build_offer("127.0.0.1", 30000, codecs)
    # A phone that answers with the offer's first codec (as RFC 3264 §6.1 suggests) keeps the law.
    first_pt = offer.media[0].formats[0]
    answer = SessionDescription.parse(build_offer("127.0.0.1", 30002, (Codec(int(first_pt)),)).serialize().encode())
    assert accept_answer(offer, answer).codec is caller


def test_before_the_caller_is_answered_our_own_order_is_used() -> None:
    assert _media(None).preferred_codecs() == (Codec.PCMU, Codec.PCMA)
