"""REGISTER handling: digest authentication (sip.auth) in front of the registrar (sip.registrar).

RFC 3261 §10.3. The address-of-record is the user part of the To URI; accounts are the
configured agents and supervisors. An unknown user is challenged like a known one and then
refused with 403, so the answers do not tell which accounts exist. The registrar's expiry
timer runs on the event loop through one ``call_later`` handle.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping
from typing import NamedTuple, cast

import structlog

from config.schema import AgentConfig, ServerConfig
from sip import (
    AddressOfRecord,
    AuthPolicy,
    AuthResult,
    Binding,
    BindingAdded,
    BindingExpired,
    BindingRefreshed,
    BindingRemoved,
    ContactBinding,
    Destination,
    DigestAlgorithm,
    DigestAuthenticator,
    LockoutPolicy,
    RegisterRequest,
    Registrar,
    RegistrarError,
    RegistrarEvent,
    RegistrarPolicy,
    RemoteSipError,
    Request,
    SipUri,
    format_params,
)

log = structlog.get_logger(__name__)


class RegisterAnswer(NamedTuple):
    """What :meth:`RegistrationService.handle` answers a REGISTER with."""

    status: int
    headers: list[tuple[str, str]]
    stateless: bool  # nothing changed and the same request gets it again (RFC 3261 §8.2.7)


class RegistrationService:
    """Authenticates REGISTERs, keeps bindings, answers with (status, extra headers)."""

    def __init__(self, config: ServerConfig, *, clock: Callable[[], float] = time.time,
                 secret: bytes | None = None) -> None:
        sip = config.sip
        lockout = LockoutPolicy(max_failures=sip.lockout.max_failures, window=sip.lockout.window_s,
                                period=sip.lockout.lockout_s)
        self.auth = DigestAuthenticator(
            AuthPolicy(realm=sip.realm, nonce_lifetime=sip.nonce_ttl_s, source_lockout=lockout,
                       algorithms=tuple(DigestAlgorithm.parse(name) for name in sip.digest_algorithms),
                       user_lockout=LockoutPolicy(max_failures=sip.lockout.max_failures * 2,
                                                  window=sip.lockout.window_s, period=sip.lockout.lockout_s)),
            secret or secrets.token_bytes(32),
        )
        self.registrar = Registrar(RegistrarPolicy(default_expires=sip.default_expires, min_expires=sip.min_expires,
                                                   max_expires=sip.max_expires))
        self._supervisors = {s.id: s.password for s in config.supervisors}
        self._agents: Mapping[str, AgentConfig] = {a.id: a for a in config.agents}
        self._clock = clock
        self._timer: asyncio.TimerHandle | None = None

    def use_agents(self, agents: Mapping[str, AgentConfig]) -> None:
        """Read agent passwords from this live mapping (agents added or removed at run time)."""
        self._agents = agents

    def _password(self, user: str) -> str | None:
        agent = self._agents.get(user)
        return agent.password if agent is not None else self._supervisors.get(user)

    def lookup(self, user: str) -> list[Binding]:
        """Current bindings of a user, best first (q, then most recent)."""
        return self.registrar.lookup(AddressOfRecord(user), self._clock())

    def _refusal(self, request: Request) -> tuple[int, list[tuple[str, str]]] | None:
        """What a REGISTER gets for what it is, before any authentication (400: its To is not a SIP URI; 404: no
        user in it), or None when it goes on. Such an answer changes nothing and the same request gets it again.

        Raises:
            RemoteSipError: the To header does not parse.
        """
        to_uri = request.to.uri
        if not isinstance(to_uri, SipUri):
            # §10.2: the To of a REGISTER holds the address-of-record, "a SIP or SIPS URI"; any other
            # scheme is a malformed request, not an unknown user (RFC 4475 'unksm2': 400, not 404).
            return 400, [("Warning", '399 cti "the To of a REGISTER must be a SIP or SIPS URI"')]
        if not to_uri.user:
            return 404, []
        return None

    def handle(self, request: Request, source: Destination) -> RegisterAnswer:
        """Answer one REGISTER: the status, the headers to add to the response, and whether it may be sent as a
        stateless UAS (it changed nothing and the same request would get it again).

        Raises:
            RemoteSipError: a malformed Contact or Expires (answered 400 by the endpoint).
        """
        refused = self._refusal(request)
        if refused is not None:
            return RegisterAnswer(*refused, True)
        now = self._clock()
        user = cast(SipUri, request.to.uri).user or ""  # refusal() has checked: a SIP URI with a user
        outcome = self.auth.authenticate(
            method="REGISTER", request_uri=str(request.uri), authorization=request.headers.get_all("Authorization"),
            account=user, password=self._password(user), source=source.addr[0], now=now,
        )
        if outcome.result in (AuthResult.CHALLENGE, AuthResult.STALE):
            return RegisterAnswer(outcome.status, [("WWW-Authenticate", c) for c in outcome.challenges], True)
        if outcome.result is AuthResult.LOCKED_OUT:
            return RegisterAnswer(403, [("Warning", '399 cti "too many failed attempts; try again later"')], False)
        if outcome.result is not AuthResult.ACCEPTED:
            return RegisterAnswer(outcome.status, [], outcome.repeatable)
        register = RegisterRequest(
            aor=AddressOfRecord(user), call_id=request.call_id, cseq=request.cseq.seq,
            contacts=tuple(self._bindings(request)), wildcard=any(c.is_wildcard for c in request.contacts),
            expires=self._expires(request), source=source.addr, transport=source.transport,
        )
        result = self.registrar.register(register, now)
        self._log_events(result.events)
        self._arm_timer()
        headers: list[tuple[str, str]] = [("Contact", c.header_value()) for c in result.contacts]
        if result.min_expires is not None:
            headers.append(("Min-Expires", str(result.min_expires)))
        if result.status == 200:
            headers.append(("Date", time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())))
        return RegisterAnswer(result.status, headers, False)  # the credentials were used: a nonce count

    def bind_local(self, user: str, uri: str, *, call_id: str, cseq: int, expires: int,
                   source: tuple[str, int]) -> int:
        """Bind (``expires`` > 0) or unbind (0) a contact the node itself registers for ``user``: the browser
        phone's user agent (docs/web.md). The registrar's own rules, events and timer, as for a REGISTER from a
        phone (it is one), without the digest round trip; returns the seconds granted (0 when unbound).

        Raises:
            RegistrarError: the registrar refused it (an ``expires`` below its minimum, an old ``cseq``).
        """
        if expires > 0:
            policy = self.registrar.policy
            expires = max(policy.min_expires, min(expires, policy.max_expires))
        result = self.registrar.register(RegisterRequest(
            aor=AddressOfRecord(user), call_id=call_id, cseq=cseq, contacts=(ContactBinding(uri=uri),),
            expires=expires, source=source, transport="UDP"), self._clock())
        self._log_events(result.events)
        self._arm_timer()
        if result.status != 200:
            raise RegistrarError(f"local binding refused: {result.reason.value}", status_hint=result.status)
        return expires

    @staticmethod
    def _expires(request: Request) -> int | None:
        value = request.headers.get("Expires")
        if value is None:
            return None
        value = value.strip()
        if not value.isdigit():
            raise RemoteSipError(f"bad Expires {value[:20]!r}", status_hint=400)
        return min(int(value), 2**32 - 1)

    @staticmethod
    def _bindings(request: Request) -> list[ContactBinding]:
        out = []
        for contact in request.contacts:
            if contact.address is None:
                continue
            # The registrar echoes parameters as written on the wire: a value that is not a token
            # keeps its quotes (RFC 5626's +sip.instance="<urn:uuid:...>"; liblinphone refuses a
            # 200 OK whose Contact carries it unquoted).
            params = tuple((k, None if v is None else format_params(((k, v),)).split("=", 1)[1])
                           for k, v in contact.address.params if k not in ("expires", "q"))
            out.append(ContactBinding(uri=str(contact.address.uri), expires=contact.expires, q=contact.q,
                                      params=params))
        return out

    def _log_events(self, events: tuple[RegistrarEvent, ...] | list[RegistrarEvent]) -> None:
        for event in events:
            name = {BindingAdded: "sip.binding.added", BindingRefreshed: "sip.binding.refreshed",
                    BindingRemoved: "sip.binding.removed", BindingExpired: "sip.binding.expired"}[type(event)]
            log.info(name, aor=event.binding.aor, contact=event.binding.uri, transport=event.binding.transport)

    def _arm_timer(self) -> None:
        when = self.registrar.get_timer()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if when is not None:
            delay = max(0.0, when - self._clock())
            self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._log_events(self.registrar.handle_timer(self._clock()))
        self._arm_timer()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
