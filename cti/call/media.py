"""The media of one call: an RTP endpoint per leg, prompts, DTMF, the bridge, the recording.

The server anchors media (a B2BUA, RFC 3264 offer/answer on each leg): the caller's RTP goes to
a port of ours, the agent's to another, and :class:`CallMedia` moves audio between them once
the call is bridged: the two endpoints are put in relay mode (:class:`sip.media.EndpointRelay`),
so a packet goes from one socket to the other with only its header rewritten — no jitter
buffer, no decoding, re-encoding only when the two legs chose different G.711 laws. When the
call is recorded the relay keeps the encoded payloads, which the recording decodes in its
worker thread (caller left, agent right).
Prompts are paced by :class:`sip.media.Player` on the loop's monotonic clock and read off the
loop by :class:`sip.media.PromptCache`. RFC 4733 digits from the caller go to ``on_digit``.

A supervisor (docs/supervision.md) adds a third endpoint, ``supervisor``. While it is on the call
the plain forwarding stops: every received frame is pushed into a :class:`MixSink` (the
supervision's mixer path) and the call's supervision ticks :meth:`CallMedia.mix_tick` every 20 ms,
which sends each leg its own mix. Which leg an endpoint's packets belong to is looked up per packet
(by endpoint identity), so a take-over can turn the supervisor's endpoint into the agent's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import structlog

from cti.call.srtp import SrtpPolicy, leg_key, offer_crypto, require_srtp
from sip import MediaParameters, SessionDescription, accept_answer, answer_at_port, build_offer, negotiate
from sip.media import (
    Channel,
    LegSide,
    MediaError,
    MediaEvent,
    Player,
    PlayItem,
    TapFrame,
)
from sip.media import DtmfReceived as RelayedDtmf
from sip.media.aio import EndpointRelay, PromptCache, Recording
from sip.rtp import (
    AudioReceived,
    Codec,
    DtmfReceived,
    PortAllocator,
    RtpEvent,
    SessionConfig,
    StreamTimedOut,
)
from sip.rtp.aio import RtpEndpoint

log = structlog.get_logger(__name__)

CODECS = (Codec.PCMU, Codec.PCMA)
ROLES = ("caller", "agent", "supervisor")


class MixSink(Protocol):
    """Where received audio goes while a supervisor is on the call (``cti.call.supervision.MixPath``)."""

    def push(self, role: str, pcm: bytes) -> None: ...

    def tick(self) -> tuple[Mapping[str, bytes], bytes]:
        """One 20 ms tick: each listener's frame, and the caller's own frame of this tick."""
        ...


class VoiceSink(Protocol):
    """Where the caller's audio goes while a voicemail is recorded (``cti.voicemail.VoicemailTake``)."""

    def push(self, event: AudioReceived, codec: Codec) -> None: ...


class MediaLeg:
    """One RTP endpoint and what was negotiated for it."""

    def __init__(self, endpoint: RtpEndpoint, params: MediaParameters | None, offer: SessionDescription | None) -> None:
        self.endpoint = endpoint
        self.params = params
        self.offer = offer  # our offer, for outbound legs awaiting the answer

    @property
    def codec(self) -> Codec:
        return self.params.codec if self.params is not None else Codec.PCMU

    def apply(self, params: MediaParameters, timeout: float) -> None:
        """Use the negotiated stream: codec, payload types, the peer's address, the SRTP keys.

        Raises:
            SrtpError: plain RTP on a leg that was SRTP (or the other way round while relaying).
        """
        self.endpoint.secure(params.srtp)
        self.params = params
        session = self.endpoint.session
        session.config = replace(SessionConfig.from_media(params), timeout=timeout,
                                 wallclock_offset=session.config.wallclock_offset)
        session.remote = (params.remote_addr, params.remote_port)


@dataclass(frozen=True, slots=True)
class AgentOffer:
    """An endpoint opened for an agent's leg and our SDP offer on it, not yet the call's (see
    :meth:`CallMedia.open_agent`)."""

    leg: MediaLeg
    body: bytes

    def discard(self) -> None:
        """Give the port back (the offer was withdrawn)."""
        self.leg.endpoint.close()


def _ignore(_: str) -> None:
    """A closed call's media reports nothing."""


class CallMedia:
    """All media of one call. Create with :meth:`open`; every method is safe after :meth:`close`."""

    def __init__(self, *, host: str, ports: PortAllocator, prompts: PromptCache, rtp_timeout: float,
                 on_digit: Callable[[str], None], on_timeout: Callable[[str], None],
                 srtp: SrtpPolicy = SrtpPolicy.OPTIONAL) -> None:
        self.host = host
        self.srtp = srtp
        self._ports = ports
        self._prompts = prompts
        self._rtp_timeout = rtp_timeout
        self._on_digit = on_digit
        self._on_timeout = on_timeout
        self.caller: MediaLeg | None = None
        self.agent: MediaLeg | None = None
        self.supervisor: MediaLeg | None = None
        self.mixing: MixSink | None = None
        self.voice: VoiceSink | None = None  # a voicemail being recorded (the caller is not bridged then)
        self._bridged = False
        self._relay: EndpointRelay | None = None
        self.recording: Recording | None = None
        self._closed = False

    @property
    def bridged(self) -> bool:
        """Whether the caller and the agent hear each other (False on hold)."""
        return self._bridged

    @bridged.setter
    def bridged(self, value: bool) -> None:
        self._bridged = value
        self._sync_relay()

    def _sync_relay(self) -> None:
        """Relay the two legs when they are bridged with no supervisor mixing; else the sessions have them."""
        caller, agent = self.caller, self.agent
        pair = (caller.endpoint, agent.endpoint) if caller is not None and agent is not None else None
        if not self._bridged or self.mixing is not None or self._closed:
            pair = None
        relay = self._relay
        if relay is not None and (relay.a, relay.b) != pair:
            relay.stop()
            if self.recording is not None:
                self.recording.push_tap(relay.drain_tap())
            self._relay = relay = None
        if pair is not None and relay is None:
            self._relay = EndpointRelay(*pair, on_event=self._relay_event, tap=self.recording is not None)

    def _relay_event(self, event: MediaEvent) -> None:
        if isinstance(event, RelayedDtmf) and event.side is LegSide.A:
            self._on_digit(event.digit)

    def drain_tap(self) -> list[TapFrame]:
        """The relayed audio kept for the recording (the recording pulls it, see :meth:`start_recording`)."""
        return self._relay.drain_tap() if self._relay is not None else []

    async def _open_endpoint(self) -> RtpEndpoint:
        opened: list[RtpEndpoint] = []

        def on_event(event: RtpEvent) -> None:
            if opened:
                self.on_rtp_event(opened[0], event)

        endpoint = await RtpEndpoint.open(
            SessionConfig(timeout=self._rtp_timeout), host=self.host, allocator=self._ports, on_event=on_event,
        )
        opened.append(endpoint)
        return endpoint

    def role_of(self, endpoint: object) -> str | None:
        """Which leg ``endpoint`` serves now (``caller``, ``agent``, ``supervisor``), or None (closed)."""
        for role, leg in (("caller", self.caller), ("agent", self.agent), ("supervisor", self.supervisor)):
            if leg is not None and leg.endpoint is endpoint:
                return role
        return None

    async def answer_caller(self, offer_body: bytes, transport: str = "UDP", policy: SrtpPolicy | None = None
                            ) -> bytes:
        """Take the caller's SDP offer (received over SIP ``transport``), open our endpoint, return
        the SDP answer (SRTP when the offer carries keys on a TLS leg, see :mod:`cti.call.srtp`; ``policy``:
        the trunk's, else the call's default).

        Raises:
            SdpParseError, SdpNegotiationError: a bad or unservable offer (400 / 488); SdesError
                (488) for a bad ``a=crypto`` line or plain RTP where SRTP is mandatory.
            PortsExhaustedError: no media port free (the call is refused with 503).
        """
        offer = SessionDescription.parse(offer_body)
        policy = policy or self.srtp
        key = leg_key(policy, transport)
        first = negotiate(offer, CODECS, self.host, 9, local_key=key)  # refuse early, before a port is taken
        require_srtp(policy, transport, first.media)
        endpoint = await self._open_endpoint()
        answer = answer_at_port(first, endpoint.local_port)
        self.caller = MediaLeg(endpoint, None, None)
        self.caller.apply(answer.media if answer.media else first.media, self._rtp_timeout)
        return answer.sdp.serialize().encode()

    def leg_of(self, role: str) -> MediaLeg | None:
        """The media leg of ``role`` (``caller``, ``agent``, ``supervisor``), if open."""
        return {"caller": self.caller, "agent": self.agent, "supervisor": self.supervisor}.get(role)

    def preferred_codecs(self) -> tuple[Codec, ...]:
        """Our codecs for a new leg's offer: the caller's negotiated codec first, so that the other
        leg settles on the same law and the bridge forwards packets without transcoding."""
        if self.caller is None or self.caller.params is None:
            return CODECS
        first = self.caller.codec
        return (first, *(c for c in CODECS if c is not first))

    async def open_agent(self, transport: str = "UDP", policy: SrtpPolicy | None = None) -> AgentOffer:
        """Open an endpoint for an agent's leg and build our offer on it (the caller's codec first;
        with an SRTP key when the phone is reached over TLS and ``policy``, the agent's, else the
        call's default, says so).

        The endpoint is not yet the call's agent leg: the offer may be withdrawn while the port is
        opened, and another offer of the same call may open its own meanwhile. :meth:`use_agent`
        makes it the agent leg; :meth:`AgentOffer.discard` gives the port back.
        """
        endpoint = await self._open_endpoint()
        crypto, proto = offer_crypto(policy or self.srtp, transport)
        offer = build_offer(self.host, endpoint.local_port, self.preferred_codecs(), crypto=crypto, proto=proto)
        return AgentOffer(MediaLeg(endpoint, None, offer), offer.serialize().encode())

    def use_agent(self, pending: AgentOffer) -> bytes | None:
        """Make ``pending`` the agent leg (closing the one before) and return the SDP to send it;
        None (the port given back) when the call's media was closed while the port was opened."""
        if self._closed:
            pending.discard()
            return None
        if self.agent is not None:
            self.agent.endpoint.close()
        self.agent = pending.leg
        return pending.body

    def agent_answered(self, answer_body: bytes) -> None:
        """Apply the agent's SDP answer.

        Raises:
            SdpParseError, SdpNegotiationError (SdesError: a bad or missing ``a=crypto`` answer).
        """
        assert self.agent is not None and self.agent.offer is not None
        params = accept_answer(self.agent.offer, SessionDescription.parse(answer_body))
        self.agent.apply(params, self._rtp_timeout)

    def drop_agent(self) -> None:
        """The agent leg is gone (no answer, rejected, hung up): close its endpoint, unbridge."""
        self.bridged = False  # stops the relay
        if self.agent is not None:
            self.agent.endpoint.close()
            self.agent = None

    def bridge(self) -> None:
        self.bridged = self.caller is not None and self.agent is not None

    # ------------------------------------------------------------------------------ supervisor leg

    async def offer_supervisor(self, transport: str = "UDP") -> bytes:
        """Open the supervisor's endpoint and return our SDP offer for its INVITE (keys as for an agent)."""
        self.drop_supervisor()
        endpoint = await self._open_endpoint()
        crypto, proto = offer_crypto(self.srtp, transport)
        offer = build_offer(self.host, endpoint.local_port, CODECS, crypto=crypto, proto=proto)
        self.supervisor = MediaLeg(endpoint, None, offer)
        return offer.serialize().encode()

    def supervisor_answered(self, answer_body: bytes) -> None:
        """Apply the supervisor phone's SDP answer. Raises: SdpParseError, SdpNegotiationError."""
        assert self.supervisor is not None and self.supervisor.offer is not None
        params = accept_answer(self.supervisor.offer, SessionDescription.parse(answer_body))
        self.supervisor.apply(params, self._rtp_timeout)

    def start_mixing(self, sink: MixSink) -> None:
        """Stop forwarding; from now on received audio goes to ``sink`` and :meth:`mix_tick` sends."""
        self.mixing = sink
        self._sync_relay()

    def stop_mixing(self) -> None:
        """Back to the plain two-party forwarding (from the next received packet)."""
        self.mixing = None
        self._sync_relay()

    def drop_supervisor(self) -> None:
        """The supervisor left: back to the plain bridge, close its endpoint."""
        self.mixing = None
        self._sync_relay()
        if self.supervisor is not None:
            self.supervisor.endpoint.close()
            self.supervisor = None

    def take_over(self) -> None:
        """The supervisor's endpoint becomes the agent's; the agent's closes; plain forwarding again."""
        old, self.agent, self.supervisor = self.agent, self.supervisor, None
        self.mixing = None
        self.bridge()
        if old is not None:
            old.endpoint.close()

    def mix_tick(self, now: float) -> None:
        """Send each leg its mix of this tick (``now``: the tick's due time, for the recording).

        Recording rule: left = what the caller sent, right = what the caller hears (the agent, plus
        the supervisor in barge); a whisper never reaches the recording. On hold (not bridged) only
        the supervisor is sent audio.
        """
        if self.mixing is None:
            return
        frames, caller_frame = self.mixing.tick()
        for role, leg in (("caller", self.caller), ("agent", self.agent), ("supervisor", self.supervisor)):
            if leg is None or (role != "supervisor" and not self.bridged):
                continue
            frame = frames.get(role)
            if frame is not None:
                leg.endpoint.send_pcm(frame)
        if self.recording is not None and self.bridged:
            self.recording.push_pcm(Channel.CALLER, caller_frame, now)
            self.recording.push_pcm(Channel.AGENT, frames.get("caller", caller_frame), now)

    async def start_recording(self, directory: Path, info: object) -> None:
        """Start recording the bridged audio (``info`` is a :class:`sip.media.RecordingInfo`)."""
        from sip.media import RecordingInfo

        assert isinstance(info, RecordingInfo)
        self.recording = await Recording.open(directory, info, clock_start=asyncio.get_running_loop().time())
        self.recording.add_tap(self)
        if self._relay is not None:
            self._relay.relay.tap = True

    async def play(self, files: Sequence[Path]) -> None:
        """Play WAV prompts to the caller in order, paced on the loop clock; cancellation stops it."""
        if self.caller is None:
            return
        items: list[PlayItem] = []
        for path in files:
            try:
                items.append(await self._prompts.load(path))
            except MediaError as exc:
                log.warning("media.prompt.missing", path=str(path), error=str(exc))
        await self.play_items(items)

    async def play_items(self, items: Sequence[PlayItem]) -> None:
        """Play prompts, tones and silences to the caller, paced on the loop clock; cancellation stops it."""
        if self.caller is None or not items:
            return
        loop = asyncio.get_running_loop()
        player = Player()
        player.play(items, loop.time(), barge_in=False)
        while (deadline := player.get_timer()) is not None:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            if self.caller is None or self._closed:
                return
            for frame in player.handle_timer(loop.time()):
                self.caller.endpoint.send_pcm(frame.pcm)

    def on_rtp_event(self, endpoint: object, event: RtpEvent) -> None:
        """An event of one of our endpoints (called by the endpoint; tests call it with fakes)."""
        which = self.role_of(endpoint)
        if which is None:
            return
        match event:
            case AudioReceived():
                self._audio(which, event)
            case DtmfReceived():
                if which == "caller":
                    self._on_digit(event.digit)
            case StreamTimedOut():
                self._on_timeout(which)
            case _:
                pass

    def _audio(self, which: str, event: AudioReceived) -> None:
        if self.voice is not None and which == "caller" and self.caller is not None:
            self.voice.push(event, self.caller.codec)
            return
        if self.mixing is not None:
            if event.pcm is not None:
                self.mixing.push(which, event.pcm)
            return
        # Otherwise the bridged legs are relayed (their audio never reaches here) or not bridged (on hold).

    async def close(self) -> Path | None:
        """Close both endpoints and finish the recording; returns the recording's path."""
        self._closed = True
        self.mixing = None
        self.voice = None
        self.bridged = False  # stops the relay, its last tapped audio goes to the recording
        self._on_digit = self._on_timeout = _ignore  # the callbacks point at the call: no cycle left
        for leg in (self.caller, self.agent, self.supervisor):
            if leg is not None:
                leg.endpoint.close()
        path = None
        if self.recording is not None:
            from datetime import UTC, datetime

            path = await self.recording.close(datetime.now(UTC).isoformat())
            self.recording = None
        return path
