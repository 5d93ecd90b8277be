"""Registrar core, sans-I/O (RFC 3261 §10.3 steps 6-8; contact comparison after §19.1.4).

Contract: the server does steps 1-5 itself (Request-URI domain, Require, authentication,
authorization that the authenticated user may change this AOR, the AOR from the To header, 404
for unknown AORs), then passes a :class:`RegisterRequest` built from the REGISTER and the
transport, and turns the :class:`RegisterOutcome` into the response: 200 with one Contact per
``outcome.contacts`` entry (``<uri>;expires=N[;q=...]``), 423 with ``Min-Expires``, or
``outcome.status``.  Time is passed in; ``get_timer()``/``handle_timer(now)`` expire bindings.

Exception tree::

    SipError (sip.errors)
    └── RegistrarError    an impossible call, e.g. a bad policy (``status_hint`` 500)
"""

from __future__ import annotations

import heapq
import math
import re
from dataclasses import dataclass, replace
from enum import Enum
from typing import NewType
from urllib.parse import unquote

from sip.errors import SipError

AddressOfRecord = NewType("AddressOfRecord", str)
ContactKey = NewType("ContactKey", str)

_ONE_HOUR = 3600
_MAX_EXPIRES_VALUE = 2**32 - 1  # RFC 3261 §20.19/§20.10: delta-seconds; larger values are treated as this
HEAP_SLACK = 64  # stale expiry entries tolerated beyond twice the live bindings before a rebuild


class RegistrarError(SipError):
    """Misuse of the registrar core (not a peer error: those become a :class:`RegisterOutcome`)."""

    def __init__(self, message: str, *, status_hint: int = 500) -> None:
        super().__init__(message, status_hint=status_hint)


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactBinding:
    """One Contact of a REGISTER (or of the 200 OK, where ``expires`` is the time left).

    ``uri`` is the addr-spec without angle brackets; ``expires`` and ``q`` are the Contact's own
    parameters (None when absent); ``params`` are the other contact-params, kept verbatim.
    """

    uri: str
    expires: int | None = None
    q: float | None = None
    params: tuple[tuple[str, str | None], ...] = ()

    def __post_init__(self) -> None:
        if self.q is not None and not 0.0 <= self.q <= 1.0:
            raise ValueError("q must be within 0..1")  # RFC 3261 §20.10: qvalue

    def header_value(self) -> str:
        """``<uri>;expires=N;q=0.5;other=params`` for a Contact of the 200 OK."""
        parts = [f"<{self.uri}>"] + ([f"expires={self.expires}"] if self.expires is not None else [])
        parts += [f"q={self.q:.3f}".rstrip("0").rstrip(".")] if self.q is not None else []
        return ";".join(parts + [k if v is None else f"{k}={v}" for k, v in self.params])


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterRequest:
    """What the registrar needs from an authenticated REGISTER.

    ``contacts`` empty and ``wildcard`` False: a query (§10.2.3).  ``wildcard``: ``Contact: *``.
    ``expires``: the Expires header (None if absent).  ``source``: where the request came from
    (the Via ``received``/``rport`` address), stored per binding to reach NAT'd phones.
    """

    aor: AddressOfRecord
    call_id: str
    cseq: int
    contacts: tuple[ContactBinding, ...] = ()
    wildcard: bool = False
    expires: int | None = None
    source: tuple[str, int] | None = None
    transport: str = "UDP"


@dataclass(frozen=True, slots=True, kw_only=True)
class Binding:
    """A current binding of an AOR to a contact."""

    aor: AddressOfRecord
    key: ContactKey
    uri: str
    q: float | None
    params: tuple[tuple[str, str | None], ...]
    call_id: str
    cseq: int
    expires_at: float
    registered_at: float
    refreshed_at: float
    source: tuple[str, int] | None
    transport: str

    def remaining(self, now: float) -> int:
        return max(0, math.ceil(self.expires_at - now))


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrarEvent:
    binding: Binding
    at: float  # the ``now`` passed in


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingAdded(RegistrarEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingRefreshed(RegistrarEvent):
    previous: Binding


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingRemoved(RegistrarEvent):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class BindingExpired(RegistrarEvent):
    pass


class RegisterReason(Enum):
    OK = "ok"
    WILDCARD_MISUSED = "wildcard_misused"  # 400
    BAD_EXPIRES = "bad_expires"  # 400
    INTERVAL_TOO_BRIEF = "interval_too_brief"  # 423 with Min-Expires
    TOO_MANY_CONTACTS = "too_many_contacts"  # 403
    OUT_OF_ORDER = "out_of_order"  # 500: same Call-ID, CSeq not higher (§10.3 step 7)


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisterOutcome:
    status: int
    reason: RegisterReason
    contacts: tuple[ContactBinding, ...] = ()  # for 200: every current binding, ``expires`` = seconds left
    min_expires: int | None = None  # for 423
    events: tuple[RegistrarEvent, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RegistrarPolicy:
    default_expires: int = 3600
    min_expires: int = 60
    max_expires: int = 7200
    max_contacts: int = 10  # per AOR

    def __post_init__(self) -> None:
        if not 0 < self.min_expires <= self.default_expires <= self.max_expires or self.max_contacts < 1:
            raise RegistrarError("need 0 < min_expires <= default_expires <= max_expires and max_contacts >= 1")


_SIP_URI = re.compile(r"(?i)(sips?):(?:([^@;?]*)@)?(\[[^\]]*\]|[^:;?]+)(?::(\d+))?((?:;[^;?]*)*)(?:\?(.*))?\Z")


def contact_key(uri: str) -> ContactKey:
    """A comparison key for a contact URI, after RFC 3261 §19.1.4: scheme, host and parameters
    compare case-insensitively (in any order), user and password exactly, escapes decoded.
    Stricter than §19.1.4 in one way: a parameter present on one side only makes a difference.
    """
    m = _SIP_URI.match(uri.strip())
    if m is None:
        return ContactKey(uri.strip())
    params = sorted(unquote(p).lower() for p in m[5].split(";")[1:])
    headers = sorted(unquote(h) for h in (m[6] or "").split("&") if h)
    user = unquote(m[2]) + "@" if m[2] is not None else ""
    return ContactKey(f"{m[1].lower()}:{user}{m[3].lower()}:{m[4] or ''};{';'.join(params)}?{'&'.join(headers)}")


class Registrar:
    """Bindings of every AOR; one instance per server (or per domain)."""

    def __init__(self, policy: RegistrarPolicy | None = None) -> None:
        self.policy = policy or RegistrarPolicy()
        self._bindings: dict[AddressOfRecord, dict[ContactKey, Binding]] = {}
        self._timers: list[tuple[float, AddressOfRecord, ContactKey]] = []  # heap; stale entries skipped
        self._count = 0  # live bindings in all AORs

    @property
    def binding_count(self) -> int:
        return self._count

    def lookup(self, aor: AddressOfRecord, now: float) -> list[Binding]:
        """Live bindings, highest q first (no q counts as 1.0), then most recently refreshed first."""
        live = [b for b in self._bindings.get(aor, {}).values() if b.expires_at > now]
        return sorted(live, key=lambda b: (-(1.0 if b.q is None else b.q), -b.refreshed_at))

    def get_timer(self) -> float | None:
        """When the next binding expires, or None."""
        while self._timers and not self._is_current(*self._timers[0]):
            heapq.heappop(self._timers)
        return self._timers[0][0] if self._timers else None

    def handle_timer(self, now: float) -> list[RegistrarEvent]:
        """Remove every binding expired at ``now``; returns their :class:`BindingExpired` events."""
        events: list[RegistrarEvent] = []
        while self._timers and self._timers[0][0] <= now:
            expires_at, aor, key = heapq.heappop(self._timers)
            if self._is_current(expires_at, aor, key):
                events.append(BindingExpired(binding=self._bindings[aor][key], at=now))
                self._store(aor, key, None)
        return events

    def register(self, request: RegisterRequest, now: float) -> RegisterOutcome:
        """Apply a REGISTER (§10.3 steps 6-8) atomically: all binding changes or none.  Never raises."""
        stored = self._bindings.get(request.aor, {}).values()
        events: list[RegistrarEvent] = [BindingExpired(binding=b, at=now) for b in stored if b.expires_at <= now]
        for event in events:
            self._store(request.aor, event.binding.key, None)
        current = dict(self._bindings.get(request.aor, {}))
        result = self._plan(request, current, now)
        if isinstance(result, RegisterOutcome):
            return replace(result, events=tuple(events))
        for key, binding in result.items():
            old = current.get(key)
            if binding is None and old is not None:
                events.append(BindingRemoved(binding=old, at=now))
            elif binding is not None:
                events.append(BindingAdded(binding=binding, at=now) if old is None else
                              BindingRefreshed(binding=binding, previous=old, at=now))
            self._store(request.aor, key, binding)
        contacts = tuple(ContactBinding(uri=b.uri, expires=b.remaining(now), q=b.q, params=b.params)
                         for b in self.lookup(request.aor, now))
        return RegisterOutcome(status=200, reason=RegisterReason.OK, contacts=contacts, events=tuple(events))

    def _plan(self, request: RegisterRequest, current: dict[ContactKey, Binding],
              now: float) -> dict[ContactKey, Binding | None] | RegisterOutcome:
        """The binding changes the request asks for, or the refusal."""
        if request.wildcard:
            # §10.3 step 6: "If the request has additional Contact fields or an expiration time other
            # than zero, the request is invalid, and the server MUST return a 400 (Invalid Request)"
            if request.contacts or request.expires != 0:
                return RegisterOutcome(status=400, reason=RegisterReason.WILDCARD_MISUSED)
            for bound in current.values():
                # "If it does agree, it MUST remove the binding only if the CSeq in the request is
                # higher than the value stored for that binding.  Otherwise, the update MUST be aborted"
                if bound.call_id == request.call_id and request.cseq <= bound.cseq:
                    return RegisterOutcome(status=500, reason=RegisterReason.OUT_OF_ORDER)
            return dict.fromkeys(current, None)
        changes: dict[ContactKey, Binding | None] = {}
        for contact in request.contacts:
            expires = contact.expires if contact.expires is not None else request.expires
            expires = self.policy.default_expires if expires is None else expires
            if expires < 0:
                return RegisterOutcome(status=400, reason=RegisterReason.BAD_EXPIRES)
            # §10.3 step 7: "If and only if the requested expiration interval is greater than zero AND
            # smaller than one hour AND less than a registrar-configured minimum, the registrar MAY
            # reject the registration with a response of 423 (Interval Too Brief)."
            if 0 < expires < min(_ONE_HOUR, self.policy.min_expires):
                return RegisterOutcome(status=423, reason=RegisterReason.INTERVAL_TOO_BRIEF,
                                       min_expires=self.policy.min_expires)
            expires = min(expires, self.policy.max_expires, _MAX_EXPIRES_VALUE)  # "MAY be shortened"
            key = contact_key(contact.uri)
            old = current.get(key)
            # "If they are the same, the registrar compares the CSeq value.  If the value is higher than
            # that of the existing binding, it MUST update or remove the binding as above.  If not, the
            # update MUST be aborted and the request fails."  (Compared with the stored bindings, so the
            # same contact twice in one request does not fail it; the last one wins.)
            if old is not None and old.call_id == request.call_id and request.cseq <= old.cseq:
                return RegisterOutcome(status=500, reason=RegisterReason.OUT_OF_ORDER)
            if expires == 0:
                changes[key] = None
                continue
            changes[key] = Binding(
                aor=request.aor, key=key, uri=contact.uri, q=contact.q, params=contact.params,
                call_id=request.call_id, cseq=request.cseq, expires_at=now + expires,
                registered_at=old.registered_at if old is not None else now, refreshed_at=now,
                source=request.source, transport=request.transport)
        if sum(b is not None for b in {**current, **changes}.values()) > self.policy.max_contacts:
            return RegisterOutcome(status=403, reason=RegisterReason.TOO_MANY_CONTACTS)
        return changes

    def _is_current(self, expires_at: float, aor: AddressOfRecord, key: ContactKey) -> bool:
        binding = self._bindings.get(aor, {}).get(key)
        return binding is not None and binding.expires_at == expires_at

    def _store(self, aor: AddressOfRecord, key: ContactKey, binding: Binding | None) -> None:
        bindings = self._bindings.setdefault(aor, {})
        if binding is None:
            if bindings.pop(key, None) is not None:
                self._count -= 1
            if not bindings:
                del self._bindings[aor]
        else:
            if key not in bindings:
                self._count += 1
            bindings[key] = binding
            heapq.heappush(self._timers, (binding.expires_at, aor, key))
            if len(self._timers) > 2 * self.binding_count + HEAP_SLACK:
                # A refresh leaves its old deadline in the heap until it comes due (up to max_expires
                # later): rebuilt from the live bindings, so a client refreshing in a loop cannot grow it.
                self._timers = [(b.expires_at, a, k) for a, keyed in self._bindings.items() for k, b in keyed.items()]
                heapq.heapify(self._timers)
