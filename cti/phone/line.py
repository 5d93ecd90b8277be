"""What a browser phone is handed by the phones' service: its SIP line and the callables it reports through.

Kept apart from :mod:`cti.phone.phone` so that the service (and the node's start) need not import the WebRTC side:
``cti.phone.phone`` imports aiortc, loaded on the first phone turned on (:meth:`cti.phone.service.WebPhones`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from cti.call.legs import LegTable

__all__ = ["PhoneLine", "Publish", "Spawn"]

Spawn = Callable[[Coroutine[Any, Any, None], str], None]
"""Runs a coroutine as a named task owned by the phones' task group (its failure is logged, never raised)."""
Publish = Callable[[str, dict[str, Any]], object]
"""Publishes an event: ``(type, data)`` (the node's publisher, not durable: a phone's state is not a record)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PhoneLine:
    """Where the phone's SIP and RTP live: the user agent's leg table and its host (the node's SIP address)."""

    table: LegTable
    host: str
