"""Events the SIP transaction layer hands to its transaction user (RFC 3261 §17, §8.1.3, §8.2, §9.2).

Every event is a frozen, keyword-only, slotted dataclass under :class:`SipEvent`; the adapter
dispatches on them with ``match`` and ends with ``assert_never``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NewType

from sip.errors import LocalSipError
from sip.message import Request, Response
from sip.timers import TimerId

Address = tuple[str, int]
ServerTransactionId = NewType("ServerTransactionId", int)
ClientTransactionId = NewType("ClientTransactionId", int)
TransactionId = ClientTransactionId | ServerTransactionId

TRANSPORTS = frozenset({"UDP", "TCP", "TLS", "SCTP", "WS", "WSS"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Destination:
    """Where a message comes from or goes to. ``connection_id`` names a stream connection."""

    transport: str  # "UDP" | "TCP" | "TLS" | "WS" (| "WSS" | "SCTP")
    addr: Address
    connection_id: int | None = None

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise LocalSipError(f"unknown transport {self.transport!r}")

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


@dataclass(frozen=True, slots=True, kw_only=True)
class SipEvent:
    """Base of every event of the SIP transaction layer."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestReceived(SipEvent):
    """A new request. ``transaction`` is None for an ACK (it has no server transaction of its own:
    an ACK to a 2xx belongs to the dialog, §17.2.3). For a CANCEL, ``cancels`` is the INVITE
    server transaction it matches (§9.2), or None, and the TU then answers 481."""

    request: Request
    source: Destination
    transaction: ServerTransactionId | None
    cancels: ServerTransactionId | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseReceived(SipEvent):
    """A response for one of our client transactions. ``transaction`` is None for a 2xx to an INVITE
    whose client transaction has already ended (a retransmission or a forked 2xx): the TU ACKs it
    again (§13.2.2.4)."""

    response: Response
    transaction: ClientTransactionId | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTimedOut(SipEvent):
    """Timer B/F (client: treat as 408), Timer H (INVITE server: no ACK for a non-2xx final),
    Timer L (INVITE server: no ACK for the 2xx within 64*T1, §13.3.1.4: the TU sends BYE) or the
    layer's guard ``TimerId.TU`` (server: the TU gave no final response within 64*T1; a non-INVITE
    transaction has ended without one, an INVITE has been answered 500)."""

    transaction: TransactionId
    request: Request
    timer: TimerId


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportFailed(SipEvent):
    """The transport could not deliver this transaction's messages (§17.1.4, §17.2.4); the
    transaction is terminated. A client TU treats it like a 503 (RFC 3263 failover is its job)."""

    transaction: TransactionId
    request: Request


@dataclass(frozen=True, slots=True, kw_only=True)
class TransactionTerminated(SipEvent):
    """The transaction reached TERMINATED and was removed from the layer."""

    transaction: TransactionId
