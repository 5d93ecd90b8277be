"""SIP timer values and names (RFC 3261 §17.1.1.1, §17.1.2.2, §17.2.1, §17.2.2, Table 4; RFC 6026 §8.11).

The transaction cores never read a clock: every deadline is ``now + value`` with ``now`` passed in.
Over a reliable transport Timers A, E and G are not started, and D, I, J and K are zero (the
transaction moves on at once instead of starting a zero-length timer).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

T1 = 0.5  # RTT estimate (s)
T2 = 4.0  # maximum retransmit interval for non-INVITE requests and INVITE responses (s)
T4 = 5.0  # maximum time a message remains in the network (s)


class TimerId(Enum):
    """Timer names exactly as RFC 3261 Table 4 spells them (L from RFC 6026)."""

    A = "A"  # INVITE request retransmit (client, unreliable only)
    B = "B"  # INVITE transaction timeout (client)
    C = "C"  # proxy INVITE transaction timeout: not used, we are not a proxy
    D = "D"  # wait time for response retransmits (client, INVITE)
    E = "E"  # non-INVITE request retransmit (client, unreliable only)
    F = "F"  # non-INVITE transaction timeout (client)
    G = "G"  # INVITE final response retransmit (server, unreliable only)
    H = "H"  # wait time for ACK receipt (server, INVITE)
    I = "I"  # noqa: E741 - the RFC's name; wait time for ACK retransmits (server, INVITE)
    J = "J"  # wait time for non-INVITE request retransmits (server)
    K = "K"  # wait time for response retransmits (client, non-INVITE)
    L = "L"  # RFC 6026: wait time for accepted INVITE request retransmits (server)
    # Not in the RFCs: the layer's guard against a server transaction the TU never answers (its
    # handler failed). 64*T1 after the request, when the client's Timer B/F has fired; see
    # sip.transaction_server and docs/sip-transactions.md.
    TU = "TU"

    # Members are singletons and compare by identity: hash them so too (Enum's own __hash__ is Python
    # code, run for every timer a transaction starts or stops).
    __hash__ = object.__hash__


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1/T2/T4 and the values derived from them. ``d`` is Timer D over unreliable transports."""

    t1: float = T1
    t2: float = T2
    t4: float = T4
    d: float = 32.0  # RFC 3261 §17.1.1.2: "at least 32 seconds for unreliable transports"

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2 or self.t4 <= 0 or self.d < 0:
            raise ValueError("timer values must be positive with t1 <= t2")

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J (unreliable), L and the TU guard."""
        return 64 * self.t1

    def timer_d(self, reliable: bool) -> float:
        return 0.0 if reliable else self.d

    def timer_i(self, reliable: bool) -> float:
        return 0.0 if reliable else self.t4

    def timer_j(self, reliable: bool) -> float:
        return 0.0 if reliable else self.timeout

    def timer_k(self, reliable: bool) -> float:
        return 0.0 if reliable else self.t4
