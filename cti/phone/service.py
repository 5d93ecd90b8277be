"""The node's browser phones: a SIP user agent of the node's own, on its own UDP port of the node's SIP address,
holding one :class:`~cti.phone.phone.WebPhone` per agent that turned its page's phone on.

Each web phone is a **real binding in the registrar** (``sip:<agent>@<host>:<port>``, made through
:meth:`cti.node.registration.RegistrationService.bind_local` and refreshed before it expires), so the call path,
the ACD, transfers and supervision ring it exactly as they ring a softphone: nothing in the call path knows it is
a browser. The user agent takes INVITEs only from the node's own SIP address and port; anything else gets 403.

Commands come from the agent's WebSocket (:class:`cti.gateway.phone.PhonePort`): ``phone_on`` (the page's WebRTC
offer → the answer), ``phone_answer``, ``phone_hangup``, ``phone_off``. A phone belongs to the connection that
turned it on; that connection's end (:meth:`WebPhones.release`), a failed peer connection, or ICE that does not
complete within ``ice_timeout_s`` turns it off and removes the binding (as a softphone's un-REGISTER). Faults stay
in the phone: every task runs guarded (a failure is logged and ends that phone, never the node).

Logs: ``webphone.state.changed``, ``webphone.task.failed``, ``webphone.invite.refused``, ``webphone.peer.lost``.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import secrets
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from cti.call.legs import LegTable
from cti.errors import ControlError
from cti.phone.line import PhoneLine, Publish
from cti.phone.state import PhoneError, PhoneState
from sip import (
    RemoteSipError,
    Request,
    RequestReceived,
    ResponseReceived,
    SipError,
    SipEvent,
    SipUri,
    TransactionLayer,
    TransactionTimedOut,
    TransportFailed,
    new_tag,
    response_to,
)
from sip.aio import SipEndpoint

if TYPE_CHECKING:
    from cti.phone.phone import WebPhone

__all__ = ["Bindings", "PhoneSettings", "WebPhones", "local_host"]

log = structlog.get_logger(__name__)


class Bindings(Protocol):
    """The registrar's door for bindings the node makes itself (``RegistrationService`` provides it)."""

    def bind_local(self, user: str, uri: str, *, call_id: str, cseq: int, expires: int,
                   source: tuple[str, int]) -> int: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneSettings:
    """Bounds of the browser phones (docs/web.md)."""

    max_phones: int = 500  # web phones at once on the node (one per agent in any case)
    ice_timeout_s: float = 15.0  # ICE + DTLS must complete within this after phone_on
    binding_expires_s: int = 300  # the binding's lifetime; refreshed at half of it


async def _webrtc() -> type[WebPhone]:
    """The WebRTC side of the phones (:mod:`cti.phone.phone`, which imports aiortc and PyAV: about 0.2 s), imported
    when the first phone is turned on rather than at the node's start (most nodes' agents use softphones), and in a
    thread, so that the event loop goes on meanwhile (a second phone turned on meanwhile waits on the import's
    lock in its own thread, never sees a half-made module)."""
    if not _LOADED:
        module = await asyncio.to_thread(importlib.import_module, "cti.phone.phone")
        _LOADED.append(module.WebPhone)
    return _LOADED[0]


_LOADED: list[type[WebPhone]] = []  # the WebPhone class, once its module is wholly imported (_webrtc)


class WebPhones:
    """All web phones of the node, and the SIP user agent they share."""

    def __init__(self, bindings: Bindings, publish: Publish, *, host: str, node_sip: tuple[str, int],
                 settings: PhoneSettings | None = None) -> None:
        self.settings = settings or PhoneSettings()
        self._bindings = bindings
        self._publish = publish
        self._host = local_host(host)
        self._node_sip = node_sip
        self._phones: dict[str, WebPhone] = {}
        self._cseq = itertools.count(1)
        self._registered: dict[str, tuple[str, asyncio.TimerHandle | None]] = {}  # agent -> (Call-ID, refresh)
        self.endpoint = SipEndpoint(TransactionLayer(), self)
        self._line: PhoneLine | None = None
        self._tasks: asyncio.TaskGroup | None = None
        self.ready = asyncio.Event()
        self.failed_tasks = 0

    # ------------------------------------------------------------------ life

    async def run(self) -> None:
        """Bind the user agent and serve until cancelled; then every phone is turned off (``shutdown``)."""
        await self.endpoint.start(self._host, 0, ("udp",))
        table = LegTable(self.endpoint, self._host, 0)
        table.set_port(self.endpoint.local_address()[1])
        self._line = PhoneLine(table=table, host=self._host)
        log.info("webphone.agent.started", sip=f"{self._host}:{self.endpoint.local_address()[1]}")
        try:
            async with asyncio.TaskGroup() as tasks:
                self._tasks = tasks
                self.ready.set()
                await asyncio.Event().wait()  # until the node's task group cancels us
        finally:
            self._tasks = None
            peers = [phone.pc for phone in self._phones.values()]
            for phone in list(self._phones.values()):
                phone.close("shutdown")  # a call gets its BYE, a ringing INVITE 480, the binding goes
            try:
                async with asyncio.timeout(2.0):
                    await asyncio.gather(*(pc.close() for pc in peers), return_exceptions=True)
            finally:
                await self.endpoint.close()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        if self._tasks is None:
            coro.close()
            return
        self._tasks.create_task(self._guarded(coro, name), name=name)

    async def _guarded(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        try:
            await coro
        except Exception as exc:  # one phone's failure must not reach the task group (it would end every phone)
            self.failed_tasks += 1
            log.error("webphone.task.failed", task=name, error=repr(exc), exc_info=exc)

    def __len__(self) -> int:
        return len(self._phones)

    def state_of(self, agent_id: str) -> PhoneState:
        phone = self._phones.get(agent_id)
        return PhoneState.OFF if phone is None else phone.state

    # ------------------------------------------------------------------ commands (cti.gateway.phone.PhonePort)

    async def command(self, agent_id: str, owner: int, name: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Raises: ControlError (PhoneError) with its code; see docs/websocket.md, "Browser phone"."""
        if name == "phone_on":
            return await self._turn_on(agent_id, owner, str(args["sdp"]), bool(args.get("auto_answer", False)))
        phone = self._phones.get(agent_id)
        if phone is None or phone.owner != owner:
            raise PhoneError("phone_off", "this page's phone is not on", status=409)
        match name:
            case "phone_answer":
                await phone.answer()
            case "phone_hangup":
                phone.hangup()
            case "phone_off":
                phone.close("turned_off")
            case _:
                raise ControlError("unknown_command", f"unknown phone command {name!r}", status=400)
        return {"state": phone.state.value, "phone_id": phone.id}

    async def _turn_on(self, agent_id: str, owner: int, offer: str, auto_answer: bool) -> dict[str, Any]:
        await self.ready.wait()
        web_phone = await _webrtc()  # before the checks: no await between them and the phone's creation
        assert self._line is not None
        current = self._phones.get(agent_id)
        if current is not None:
            if current.state in (PhoneState.RINGING, PhoneState.IN_CALL):
                raise PhoneError("phone_in_call", "the agent's browser phone has a call; hang up first", status=409)
            current.close("replaced")  # a reload, or another tab of the agent: the newest page has the phone
        if len(self._phones) >= self.settings.max_phones:
            raise PhoneError("phones_full", f"the node serves {self.settings.max_phones} browser phones at most",
                             status=503)
        phone = web_phone(agent_id=agent_id, owner=owner, auto_answer=auto_answer, line=self._line,
                          publish=self._publish, spawn=self._spawn, ice_timeout_s=self.settings.ice_timeout_s)
        self._phones[agent_id] = phone
        phone.on_off = self._forget
        try:
            answer = await phone.connect(offer)
        except BaseException:
            phone.on_off = None
            self._phones.pop(agent_id, None)
            self._spawn(phone.pc.close(), f"webphone-{agent_id}-close")
            raise
        if phone.closed or self._phones.get(agent_id) is not phone:  # replaced or released while ICE gathered
            raise PhoneError("phone_off", "the phone was turned off while it was being set up", status=409)
        self._bind(agent_id)
        phone.turned_on()
        return {"sdp": answer, "state": phone.state.value, "phone_id": phone.id}

    def release(self, owner: int) -> None:
        """Connection ``owner`` ended: its phone goes off (``disconnected``)."""
        for phone in [p for p in self._phones.values() if p.owner == owner]:
            phone.close("disconnected")

    def _forget(self, phone: WebPhone) -> None:
        if self._phones.get(phone.agent_id) is phone:
            del self._phones[phone.agent_id]
            self._unbind(phone.agent_id)

    # ------------------------------------------------------------------ the registrar

    def _contact(self, agent_id: str) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host  # an IPv6 address in a URI (RFC 3261 §25.1)
        return str(SipUri(user=agent_id, host=host, port=self.endpoint.local_address()[1]))

    def _bind(self, agent_id: str) -> None:
        call_id = self._registered.get(agent_id, (f"webphone-{secrets.token_hex(8)}@{self._host}", None))[0]
        granted = self._bindings.bind_local(agent_id, self._contact(agent_id), call_id=call_id, cseq=next(self._cseq),
                                            expires=self.settings.binding_expires_s,
                                            source=self.endpoint.local_address())
        refresh = asyncio.get_running_loop().call_later(granted / 2, self._refresh, agent_id)
        old = self._registered.get(agent_id)
        if old is not None and old[1] is not None:
            old[1].cancel()
        self._registered[agent_id] = (call_id, refresh)

    def _refresh(self, agent_id: str) -> None:
        if agent_id in self._phones:
            try:
                self._bind(agent_id)
            except SipError as exc:  # the registrar refused the refresh: the page is told its phone is off
                log.error("webphone.binding.failed", agent_id=agent_id, error=str(exc))
                self._phones[agent_id].close("failed")

    def _unbind(self, agent_id: str) -> None:
        registered = self._registered.pop(agent_id, None)
        if registered is None:
            return
        call_id, refresh = registered
        if refresh is not None:
            refresh.cancel()
        try:
            self._bindings.bind_local(agent_id, self._contact(agent_id), call_id=call_id, cseq=next(self._cseq),
                                      expires=0, source=self.endpoint.local_address())
        except SipError as exc:  # the binding then expires by itself; the phone is gone either way
            log.error("webphone.binding.failed", agent_id=agent_id, error=repr(exc))

    # ------------------------------------------------------------------ SIP (the user agent's TU)

    def on_sip_event(self, event: SipEvent) -> None:
        if self._line is None:
            return
        table = self._line.table
        match event:
            case RequestReceived():
                self._on_request(event, table)
            case ResponseReceived():
                table.on_response(event)
            case TransactionTimedOut() | TransportFailed():
                table.on_timeout(event.transaction)
            case _:
                pass

    def _refuse(self, event: RequestReceived, status: int) -> None:
        log.info("webphone.invite.refused" if event.request.method == "INVITE" else "webphone.request.refused",
                 method=event.request.method, status=status, source=f"{event.source.addr[0]}:{event.source.addr[1]}")
        self.endpoint.send_response(response_to(event.request, status, to_tag=new_tag()))

    def _on_request(self, event: RequestReceived, table: LegTable) -> None:
        request = event.request
        if request.method == "ACK" or request.method == "CANCEL" or _has_to_tag(request):
            if request.method == "CANCEL":
                leg = table.leg_for_invite(event.cancels) if event.cancels is not None else None
                if leg is not None:
                    leg.on_cancel(event)
                else:
                    self.endpoint.send_response(response_to(request, 481))
                return
            found = table.leg_for_request(request)
            if found is not None:
                found.on_request(event)
            elif request.method != "ACK":
                self.endpoint.send_response(response_to(request, 481))
            return
        if (event.source.addr[0], int(event.source.addr[1])) != self._node_sip:
            self._refuse(event, 403)  # only the node itself calls its web phones
            return
        if request.method == "OPTIONS":
            self.endpoint.send_response(response_to(request, 200, to_tag=new_tag()))
            return
        if request.method != "INVITE":
            self._refuse(event, 405 if request.method != "BYE" else 481)
            return
        user = request.uri.user if isinstance(request.uri, SipUri) else None
        phone = self._phones.get(user or "")
        if phone is None:
            self._refuse(event, 480)
            return
        phone.invited(event)


def _has_to_tag(request: Request) -> bool:
    try:
        return request.to.tag is not None
    except RemoteSipError:
        return False


def local_host(bind: str) -> str:
    """The address the node's web phones use: its SIP address, or loopback when it listens on every address."""
    return "127.0.0.1" if bind in ("0.0.0.0", "", "::") else bind
