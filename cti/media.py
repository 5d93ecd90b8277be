"""The media of one call: an RTP endpoint per leg, prompts, DTMF, the bridge, the recording.

The server anchors media (a B2BUA, RFC 3264 offer/answer on each leg): the caller's RTP goes to
a port of ours, the agent's to another, and :class:`CallMedia` moves audio between them once
the call is bridged — re-encoding only when the two legs chose different G.711 laws. Each
received frame of the bridged call is also handed to the recorder (caller left, agent right).
Prompts are paced by :class:`sip.media.Player` on the loop's monotonic clock and read off the
loop by :class:`sip.media.PromptCache`. RFC 4733 digits from the caller go to ``on_digit``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import structlog

from sip.media import Channel, MediaError, Player, Prompt, PromptCache, Recording
from sip.rtp import (
    AudioReceived,
    Codec,
    DtmfReceived,
    PortAllocator,
    RtpEndpoint,
    RtpEvent,
    SessionConfig,
    StreamTimedOut,
)
from sip.sdp import MediaParameters, SessionDescription, accept_answer, build_offer, negotiate

log = structlog.get_logger(__name__)

CODECS = (Codec.PCMU, Codec.PCMA)


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
        """Use the negotiated stream: codec, payload types, the peer's address."""
        self.params = params
        session = self.endpoint.session
        session.config = replace(SessionConfig.from_media(params), timeout=timeout,
                                 wallclock_offset=session.config.wallclock_offset)
        session.remote = (params.remote_addr, params.remote_port)


class CallMedia:
    """All media of one call. Create with :meth:`open`; every method is safe after :meth:`close`."""

    def __init__(self, *, host: str, ports: PortAllocator, prompts: PromptCache, rtp_timeout: float,
                 on_digit: Callable[[str], None], on_timeout: Callable[[str], None]) -> None:
        self.host = host
        self._ports = ports
        self._prompts = prompts
        self._rtp_timeout = rtp_timeout
        self._on_digit = on_digit
        self._on_timeout = on_timeout
        self.caller: MediaLeg | None = None
        self.agent: MediaLeg | None = None
        self.bridged = False
        self.recording: Recording | None = None
        self._closed = False

    async def _open_endpoint(self, which: str) -> RtpEndpoint:
        return await RtpEndpoint.open(
            SessionConfig(timeout=self._rtp_timeout), host=self.host, allocator=self._ports,
            on_event=lambda event: self._on_event(which, event),
        )

    async def answer_caller(self, offer_body: bytes) -> bytes:
        """Take the caller's SDP offer, open our endpoint, return the SDP answer.

        Raises:
            SdpParseError, SdpNegotiationError: a bad or unservable offer (400 / 488).
            PortsExhaustedError: no media port free (the call is refused with 503).
        """
        offer = SessionDescription.parse(offer_body)
        first = negotiate(offer, CODECS, self.host, 9)  # refuse early, before a port is taken
        endpoint = await self._open_endpoint("caller")
        answer = negotiate(offer, CODECS, self.host, endpoint.local_port)
        self.caller = MediaLeg(endpoint, None, None)
        self.caller.apply(answer.media if answer.media else first.media, self._rtp_timeout)
        return answer.sdp.serialize().encode()

    async def offer_agent(self) -> bytes:
        """Open the agent-side endpoint and return our SDP offer for the agent's INVITE."""
        if self.agent is not None:
            self.agent.endpoint.close()
        endpoint = await self._open_endpoint("agent")
        offer = build_offer(self.host, endpoint.local_port, CODECS)
        self.agent = MediaLeg(endpoint, None, offer)
        return offer.serialize().encode()

    def agent_answered(self, answer_body: bytes) -> None:
        """Apply the agent's SDP answer. Raises: SdpParseError, SdpNegotiationError."""
        assert self.agent is not None and self.agent.offer is not None
        params = accept_answer(self.agent.offer, SessionDescription.parse(answer_body))
        self.agent.apply(params, self._rtp_timeout)

    def drop_agent(self) -> None:
        """The agent leg is gone (no answer, rejected, hung up): close its endpoint, unbridge."""
        self.bridged = False
        if self.agent is not None:
            self.agent.endpoint.close()
            self.agent = None

    def bridge(self) -> None:
        self.bridged = self.caller is not None and self.agent is not None

    async def start_recording(self, directory: Path, info: object) -> None:
        """Start recording the bridged audio (``info`` is a :class:`sip.media.RecordingInfo`)."""
        from sip.media import RecordingInfo

        assert isinstance(info, RecordingInfo)
        self.recording = await Recording.open(directory, info, clock_start=asyncio.get_running_loop().time())

    async def play(self, files: Sequence[Path]) -> None:
        """Play WAV prompts to the caller in order, paced on the loop clock; cancellation stops it."""
        if self.caller is None:
            return
        items: list[Prompt] = []
        for path in files:
            try:
                items.append(await self._prompts.load(path))
            except MediaError as exc:
                log.warning("media.prompt.missing", path=str(path), error=str(exc))
        if not items:
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

    def _on_event(self, which: str, event: RtpEvent) -> None:
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
        if not self.bridged or self.caller is None or self.agent is None:
            return
        source, target = (self.caller, self.agent) if which == "caller" else (self.agent, self.caller)
        same_law = source.params is not None and event.payload_type == source.params.payload_type \
            and target.codec is source.codec
        if same_law:
            target.endpoint.send_audio(event.payload)
        elif event.pcm is not None:
            target.endpoint.send_pcm(event.pcm)
        if self.recording is not None and event.pcm is not None:
            channel = Channel.CALLER if which == "caller" else Channel.AGENT
            self.recording.push_pcm(channel, event.pcm, event.now)

    async def close(self) -> Path | None:
        """Close both endpoints and finish the recording; returns the recording's path."""
        self._closed = True
        self.bridged = False
        for leg in (self.caller, self.agent):
            if leg is not None:
                leg.endpoint.close()
        path = None
        if self.recording is not None:
            from datetime import UTC, datetime

            path = await self.recording.close(datetime.now(UTC).isoformat())
            self.recording = None
        return path
