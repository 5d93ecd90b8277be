"""Shared machinery of the four RFC 3261 §17 transaction state machines.

A transaction is a plain object driven by its layer: it owns its state, its timer deadlines
(``now`` is passed in, never read), and writes its outputs (messages and events) into the
layer's :class:`Outbox`. State changes go through one ``_set_state``, which logs
``sip.transaction.state_changed``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import ClassVar

import structlog

from sip.events import Destination, SipEvent, TransactionId, TransactionTerminated, TransportFailed
from sip.message import Outgoing, Request
from sip.timers import TimerConfig, TimerId

logger = structlog.get_logger("sip.transaction")


class TransactionState(Enum):
    """States of RFC 3261 Figures 5-8, plus RFC 6026's Accepted."""

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


@dataclass(slots=True)
class Outbox:
    """What the layer hands out: messages for the transport adapter and events for the TU."""

    messages: list[tuple[Outgoing, Destination]] = field(default_factory=list)
    events: deque[SipEvent] = field(default_factory=deque)
    resent: int = 0  # messages sent again: timer retransmissions and answers to a peer's retransmission
    received_again: int = 0  # retransmissions received from peers (absorbed or answered again)
    unanswered: int = 0  # server transactions the TU left without a final response (TimerId.TU fired)


class Transaction:
    """Base of client and server transactions: state, timers, outputs."""

    kind: ClassVar[str] = "transaction"

    def __init__(
        self, *, id: TransactionId, request: Request, destination: Destination, config: TimerConfig,
        outbox: Outbox, state: TransactionState,
    ) -> None:
        self.id = id
        self.request = request
        self.destination = destination
        self.config = config
        self.state = state
        self.branch = request.top_via.branch or ""
        self._outbox = outbox
        self._deadlines: dict[TimerId, float] = {}
        # Retransmission intervals (Timers A, E, G), made when one starts: a non-INVITE server transaction
        # never retransmits, and under a flood those are most of the live transactions.
        self._intervals: dict[TimerId, float] | None = None

    @property
    def reliable(self) -> bool:
        return self.destination.reliable

    @property
    def terminated(self) -> bool:
        return self.state is TransactionState.TERMINATED

    def timer_deadline(self, timer: TimerId) -> float | None:
        """When ``timer`` fires, or None if it is not running (for tests and debugging)."""
        return self._deadlines.get(timer)

    def get_timer(self) -> float | None:
        return min(self._deadlines.values(), default=None)

    def handle_timer(self, now: float) -> None:
        """Fire every timer due at ``now``, earliest first."""
        while not self.terminated:
            due = [(deadline, timer.value, timer) for timer, deadline in self._deadlines.items() if deadline <= now]
            if not due:
                return
            _, _, timer = min(due)
            del self._deadlines[timer]
            self._on_timer(timer, now)

    def _on_timer(self, timer: TimerId, now: float) -> None:
        raise NotImplementedError

    def transport_failed(self) -> None:
        """§17.1.4: "the client transaction SHOULD inform the TU that a transport failure has occurred,
        and the client transaction SHOULD transition directly to the "Terminated" state" (§17.2.4 alike)."""
        if not self.terminated:
            self._emit(TransportFailed(transaction=self.id, request=self.request))
            self._set_state(TransactionState.TERMINATED)

    def _start(self, timer: TimerId, delay: float, now: float) -> None:
        self._deadlines[timer] = now + delay

    def _start_retransmit(self, timer: TimerId, now: float) -> None:
        """Start A, E or G at T1, unless the transport is reliable (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1)."""
        if not self.reliable:
            self._set_interval(timer, self.config.t1)
            self._start(timer, self.config.t1, now)

    def _set_interval(self, timer: TimerId, interval: float) -> None:
        if self._intervals is None:
            self._intervals = {}
        self._intervals[timer] = interval

    def _interval(self, timer: TimerId) -> float:
        """The current interval of a retransmission timer that was started."""
        intervals = self._intervals
        if intervals is None:
            raise KeyError(timer)
        return intervals[timer]

    def _stop(self, *timers: TimerId) -> None:
        for timer in timers:
            self._deadlines.pop(timer, None)

    def _linger(self, timer: TimerId, delay: float, new_state: TransactionState, now: float) -> None:
        """Enter ``new_state`` and wait ``delay`` (D, I, J, K); zero over reliable transports ends at once."""
        self._set_state(new_state)
        if delay <= 0:
            self._set_state(TransactionState.TERMINATED)
        else:
            self._start(timer, delay, now)

    def _send(self, message: Outgoing) -> None:
        self._outbox.messages.append((message, self.destination))

    def _resend(self, message: Outgoing) -> None:
        """Send ``message`` again (a retransmission): counted for ``/metrics``."""
        self._outbox.resent += 1
        self._outbox.messages.append((message, self.destination))

    def _received_again(self) -> None:
        self._outbox.received_again += 1

    def _emit(self, event: SipEvent) -> None:
        self._outbox.events.append(event)

    def _set_state(self, state: TransactionState) -> None:
        if state is self.state:
            return
        logger.debug(
            "sip.transaction.state_changed", transaction=self.id, kind=self.kind, branch=self.branch,
            method=self.request.method, old=self.state._name_, new=state._name_,
        )
        self.state = state
        if state is TransactionState.TERMINATED:
            self._deadlines.clear()
            self._emit(TransactionTerminated(transaction=self.id))
