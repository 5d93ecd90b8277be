"""One agent's browser phone: a SIP user agent's line (the UAS side of the node's INVITE, :class:`InboundLeg`)
whose audio goes to and from the agent's page over a WebRTC peer connection (aiortc).

The call path sees an ordinary registered phone: the node INVITEs the binding, this line answers 180 at once
(the page rings), 200 with its SDP when the page answers, and ends with a BYE either way; re-INVITEs (hold) are
answered with the mirrored direction (RFC 3264 §8.4). State changes go through :func:`cti.phone.state.next_state`
in one ``_set_state`` and are published as ``phone.state_changed``.

RFC 3261 §13.3 (the UAS of an INVITE), §15 (BYE), §9.2 (CANCEL, in :class:`InboundLeg`); RFC 3264 §6 (answer);
RFC 8829/8835 (the page's side is WebRTC: ICE, DTLS-SRTP; aiortc implements it).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from dataclasses import replace

import structlog
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError
from aiortc.mediastreams import MediaStreamTrack

from cti.call.legs import HangupCause, InboundLeg, LegEnded, LegEvent, LegReferred, LegReinvited
from cti.phone.line import PhoneLine, Publish, Spawn
from cti.phone.media import CallAudio, pump_from_page
from cti.phone.state import (
    Caller,
    HangupAction,
    PhoneError,
    PhoneInput,
    PhoneState,
    caller_of,
    hangup_action,
    next_state,
)
from sip import RemoteSipError, Response, SessionDescription, negotiate, new_tag, response_to
from sip.events import RequestReceived
from sip.rtp import AudioReceived, Codec, RtpEvent, SessionConfig
from sip.rtp.aio import RtpEndpoint

__all__ = ["CODECS", "PhoneLine", "WebPhone"]

log = structlog.get_logger(__name__)

CODECS = (Codec.PCMU, Codec.PCMA)
"""What the phone answers the node with, in this order: the node's own codecs (no transcoding in the node)."""

_PAGE_CODECS = ("audio/pcmu", "audio/pcma")
"""What the peer connection offers the page first: G.711 too, so aiortc never resamples (docs/web.md)."""

_END_REASONS = {HangupCause.REMOTE_BYE: "remote_hangup", HangupCause.REMOTE_CANCEL: "caller_cancelled",
                HangupCause.LOCAL: "hung_up", HangupCause.TIMEOUT: "failed"}


class WebPhone:
    """The web phone of one agent, owned by one WebSocket connection (``owner``)."""

    def __init__(self, *, agent_id: str, owner: int, auto_answer: bool, line: PhoneLine, publish: Publish,
                 spawn: Spawn, ice_timeout_s: float) -> None:
        self.agent_id = agent_id
        self.id = f"p-{secrets.token_hex(6)}"
        self.owner = owner
        self.auto_answer = auto_answer
        self.state = PhoneState.OFF
        self._line = line
        self._publish = publish
        self._spawn = spawn
        self._ice_timeout_s = ice_timeout_s
        # No STUN or TURN server: host candidates only (the page and the node on one LAN or machine; the node
        # fetches nothing from the internet). docs/web.md says how to reach a page elsewhere.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.audio = CallAudio()
        self.leg: InboundLeg | None = None
        self.caller = Caller(call_id=None, number=None)
        self.rtp: RtpEndpoint | None = None
        self._offer: SessionDescription | None = None
        self._ending: str | None = None
        self.closed = False
        """Set once by :meth:`close` (also before the phone was ever on: its connection ended during ICE)."""
        self.on_off: Callable[[WebPhone], None] | None = None
        """Called once when the phone is closed, for whatever reason: the service forgets it and unbinds it."""

    # ------------------------------------------------------------------ the page's side

    async def connect(self, offer: str) -> str:
        """Answer the page's WebRTC offer (audio, G.711 only) and return the answer once ICE gathering is done.

        Raises:
            PhoneError: ``bad_sdp`` when the offer cannot be used (no audio, unparsable, no common codec).
        """
        self.pc.on("track", self._on_track)
        self.pc.on("connectionstatechange", self._on_connection_state)
        # The transceiver exists before the offer is applied: its codec preferences decide what the answer takes.
        transceiver = self.pc.addTransceiver(self.audio, direction="sendrecv")
        transceiver.setCodecPreferences([c for c in RTCRtpSender.getCapabilities("audio").codecs
                                         if c.mimeType.lower() in _PAGE_CODECS])
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
            if transceiver.mid is None:
                raise PhoneError("bad_sdp", "the offer has no audio", status=400)
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except (ValueError, KeyError, AttributeError, InvalidAccessError, InvalidStateError, OperationError) as exc:
            if self.closed:  # turned off meanwhile (its connection ended): the peer connection was closed under it
                raise PhoneError("phone_off", "the phone was turned off while it was being set up") from exc
            raise PhoneError("bad_sdp", f"the page's offer cannot be answered: {exc}", status=400) from exc
        self._spawn(self._watch_ice(), f"webphone-{self.agent_id}-ice")
        return str(self.pc.localDescription.sdp)

    def turned_on(self) -> None:
        self._set_state(PhoneInput.TURNED_ON)

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio":
            self._spawn(pump_from_page(track, self._to_call), f"webphone-{self.agent_id}-mic")

    def _to_call(self, pcm: bytes) -> None:
        if self.rtp is not None and self.state is PhoneState.IN_CALL:
            self.rtp.send_pcm(pcm)

    def _on_connection_state(self) -> None:
        """aiortc's callback: a failed or closed peer connection turns the phone off. Runs inside aiortc's own
        emitter, so nothing may escape from here (it would break aiortc, not just this phone)."""
        if self.pc.connectionState in ("failed", "closed") and not self.closed:
            log.info("webphone.peer.lost", agent_id=self.agent_id, state=self.pc.connectionState)
            try:
                self.close("ice_failed" if self.pc.connectionState == "failed" else "disconnected")
            except Exception as exc:  # a bug while turning one phone off: logged, the phone is dropped anyway
                log.error("webphone.close.failed", agent_id=self.agent_id, error=repr(exc), exc_info=exc)

    async def _watch_ice(self) -> None:
        """ICE and DTLS must complete within ``ice_timeout_s``, or the phone goes off (``ice_failed``)."""
        await asyncio.sleep(self._ice_timeout_s)
        if self.pc.connectionState != "connected" and not self.closed:
            log.info("webphone.ice.timed_out", agent_id=self.agent_id, state=self.pc.connectionState)
            self.close("ice_failed")

    # ------------------------------------------------------------------ the node's side (SIP)

    def invited(self, event: RequestReceived) -> None:
        """The node's INVITE for this agent: 486 unless ready, 488 for an offer the phone cannot take, else a new
        line that rings (180) in the page."""
        if self.state is not PhoneState.READY:
            self._line.table.endpoint.send_response(_refusal(event, 486))
            return
        try:
            offer = SessionDescription.parse(event.request.body)
            negotiate(offer, CODECS, self._line.host, 9)  # can it be answered at all (the port comes later)?
        except RemoteSipError as exc:
            self._line.table.endpoint.send_response(_refusal(event, exc.status_hint))
            return
        self.leg = InboundLeg(self._line.table, self, event)
        self._offer = offer
        self.caller = caller_of(event.request)
        self.leg.ringing()
        self._set_state(PhoneInput.INVITED)
        if self.auto_answer:
            self._spawn(self._auto_answer(self.leg), f"webphone-{self.agent_id}-answer")

    async def _auto_answer(self, leg: InboundLeg) -> None:
        if self.leg is leg and self.state is PhoneState.RINGING:
            await self.answer()

    async def answer(self) -> None:
        """The page answers: open the phone's RTP endpoint and send 200 with its SDP.

        Raises:
            PhoneError: ``no_call`` when nothing rings (or the caller gave up meanwhile).
        """
        next_state(self.state, PhoneInput.ANSWERED)  # refuses early, before any port is opened
        leg, offer = self.leg, self._offer
        assert leg is not None and offer is not None
        try:
            rtp = await RtpEndpoint.open(SessionConfig(timeout=None, rtcp_interval=None), host=self._line.host,
                                         rtcp=False, on_event=self._from_call)
        except OSError as exc:  # no local port: the call rings on (the ACD's no-answer time ends the offer)
            raise PhoneError("no_media_port", f"no media port for the phone: {exc}", status=503) from exc
        if self.leg is not leg or self.state is not PhoneState.RINGING:
            rtp.close()
            raise PhoneError("no_call", "the call ended before it was answered", status=409)
        answer = negotiate(offer, CODECS, self._line.host, rtp.local_port)
        rtp.session.config = replace(SessionConfig.from_media(answer.media), timeout=None, rtcp_interval=None,
                                     wallclock_offset=rtp.session.config.wallclock_offset)
        rtp.session.remote = (answer.media.remote_addr, answer.media.remote_port)
        self.rtp = rtp
        leg.answer(answer.sdp.serialize().encode())
        self.audio.start()
        self._set_state(PhoneInput.ANSWERED)

    def hangup(self) -> None:
        """The page hangs up: 603 Decline while ringing, BYE in a call.

        Raises:
            PhoneError: ``no_call``.
        """
        leg = self.leg
        action = hangup_action(self.state)
        assert leg is not None
        if action is HangupAction.DECLINE:
            self._ending = "declined"
            leg.reject(603)
        else:
            self._ending = "hung_up"
            leg.bye()

    def _from_call(self, event: RtpEvent) -> None:
        if isinstance(event, AudioReceived) and event.pcm is not None:  # None: a codec the session cannot decode
            self.audio.push(event.pcm)

    def on_leg_event(self, event: LegEvent) -> None:
        match event:
            case LegEnded() if event.leg is self.leg:
                reason = self._ending or _END_REASONS[event.cause]
                self._end_call()
                if self.state in (PhoneState.RINGING, PhoneState.IN_CALL):
                    self._set_state(PhoneInput.ENDED, reason=reason)
            case LegReinvited():
                self._reinvited(event)
            case LegReferred():
                event.leg.answer_refer(event.request, 403)  # the phone transfers nothing itself: the page does
            case _:
                pass

    def _reinvited(self, event: LegReinvited) -> None:
        """Hold and resume (RFC 3264 §8.4): the mirrored direction on the same port and codec."""
        if self.rtp is None:
            event.leg.answer_reinvite(event.request, None, 488)
            return
        try:
            answer = negotiate(SessionDescription.parse(event.request.body), (self.rtp.session.config.codec,),
                               self._line.host, self.rtp.local_port)
        except RemoteSipError as exc:
            event.leg.answer_reinvite(event.request, None, exc.status_hint)
            return
        self.rtp.session.remote = (answer.media.remote_addr, answer.media.remote_port)
        event.leg.answer_reinvite(event.request, answer.sdp.serialize().encode())

    def _end_call(self) -> None:
        if self.rtp is not None:
            self.rtp.close()
            self.rtp = None
        self.audio.pause()
        self.leg = None
        self._offer = None
        self._ending = None

    # ------------------------------------------------------------------ off

    def close(self, reason: str) -> None:
        """Turn the phone off: a ringing INVITE gets 480, a call a BYE; the peer connection is closed. Idempotent."""
        if self.closed:
            return
        self.closed = True
        leg = self.leg
        if leg is not None:
            self._ending = reason
            if self.state is PhoneState.RINGING:
                leg.reject(480)  # §21.4.18 Temporarily Unavailable: the phone went away
            else:
                leg.bye()
        self._end_call()
        if self.state is not PhoneState.OFF:  # OFF: it never got on (closed while ICE was gathering)
            self._set_state(PhoneInput.TURNED_OFF, reason=reason)
        self.audio.stop()
        self._spawn(self.pc.close(), f"webphone-{self.agent_id}-close")
        if self.on_off is not None:
            callback, self.on_off = self.on_off, None
            callback(self)

    def _set_state(self, event: PhoneInput, *, reason: str | None = None) -> None:
        before = self.state
        self.state = next_state(before, event)
        ringing = self.state in (PhoneState.RINGING, PhoneState.IN_CALL)
        log.info("webphone.state.changed", agent_id=self.agent_id, before=before.value, after=self.state.value,
                 reason=reason, call_id=self.caller.call_id if ringing else None)
        self._publish("phone.state_changed", {
            "agent_id": self.agent_id, "phone_id": self.id, "state": self.state.value,
            "call_id": self.caller.call_id if ringing else None, "caller": self.caller.number if ringing else None,
            "reason": reason})


def _refusal(event: RequestReceived, status: int) -> Response:
    """A final answer to an INVITE that makes no line (§8.2.6.2: "the UAS MUST add a tag to the To header field")."""
    return response_to(event.request, status, to_tag=new_tag())
