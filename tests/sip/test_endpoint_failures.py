"""The endpoint answers a request its handler failed on, at once (not after the TU guard's 64*T1).

A handler (the server's SIP core) that raises while handling a new request would leave its server
transaction without a final response: the peer would retransmit and wait, and the transaction
would live until the guard. The endpoint answers it instead: ``status_hint`` for a
:class:`RemoteSipError` (a malformed Expires in a REGISTER: 400), 500 for anything else.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import weakref

import sip.message as message_module
import sip.uri as uri_module
from sip.aio import SipEndpoint
from sip.errors import RemoteSipError
from sip.events import RequestReceived, SipEvent
from sip.message import Response, parse_message
from sip.transaction import TransactionLayer, TransactionState
from tests.sip.pair import make_request


class FailingHandler:
    def __init__(self) -> None:
        self.seen: list[SipEvent] = []

    def on_sip_event(self, event: SipEvent) -> None:
        self.seen.append(event)
        if isinstance(event, RequestReceived) and event.request.method == "REGISTER":
            raise RemoteSipError("bad Expires", status_hint=400)
        if isinstance(event, RequestReceived) and event.request.method == "OPTIONS":
            raise RuntimeError("a bug in the handler")


async def _exchange(method: str) -> tuple[Response, SipEndpoint]:
    endpoint = SipEndpoint(TransactionLayer(), FailingHandler())
    await endpoint.start("127.0.0.1", 0, transports=("udp",))
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    loop = asyncio.get_running_loop()
    try:
        request = make_request(method, via_host="127.0.0.1", via_params=";rport", call_id=f"{method}@x")
        peer.sendto(bytes(request), endpoint.local_address())
        async with asyncio.timeout(2):
            data = await loop.sock_recv(peer, 65535)
        answer = parse_message(data)
        assert isinstance(answer, Response)
        return answer, endpoint
    finally:
        peer.close()
        await endpoint.close()


async def test_a_remote_error_from_the_handler_is_answered_with_its_status_hint() -> None:
    """A malformed request (a header the handler read does not parse) fails the same way each time: it is
    answered as a stateless UAS (RFC 3261 §8.2.7), so its transaction ends with the answer."""
    answer, endpoint = await _exchange("REGISTER")
    assert answer.status == 400
    (request,) = [e.request for e in endpoint._handler.seen  # type: ignore[attr-defined]
                  if isinstance(e, RequestReceived)]
    assert answer.to.tag == endpoint.layer.stateless_tag(request)  # what a retransmission would get again
    assert endpoint.layer.unanswered == 0
    assert [endpoint.layer.state_of(t) for t in _server_ids(endpoint)] == [None]  # ended, not in Completed


async def test_a_bug_in_the_handler_is_answered_500() -> None:
    answer, endpoint = await _exchange("OPTIONS")
    assert answer.status == 500
    assert [endpoint.layer.state_of(t) for t in _server_ids(endpoint)] == [TransactionState.COMPLETED]


def _server_ids(endpoint: SipEndpoint) -> list[int]:
    return [e.transaction for e in endpoint._handler.seen  # type: ignore[attr-defined]
            if isinstance(e, RequestReceived) and e.transaction is not None]


class _SizedLayer(TransactionLayer):
    live = 0

    def __len__(self) -> int:
        return self.live


def test_memory_is_given_back_once_a_burst_has_drained() -> None:
    from sip.aio import TRIM_INTERVAL, TRIM_PEAK, release_memory

    trimming = release_memory()
    layer = _SizedLayer()
    endpoint = SipEndpoint(layer, FailingHandler())
    layer.live = TRIM_PEAK + 100
    endpoint._after_burst(0.0)
    layer.live = TRIM_PEAK  # still high: nothing yet
    assert endpoint._after_burst(1.0) is None
    assert endpoint.trims == 0
    parse_message(bytes(make_request("OPTIONS", call_id="cached@x"))).vias  # noqa: B018 - fills the caches
    assert message_module._view_cache and uri_module._parse_uri_cached.cache_info().currsize
    layer.live = (TRIM_PEAK + 100) // 8  # an eighth of the peak: the first release
    endpoint._after_burst(2.0)
    assert endpoint.trims == (1 if trimming else 0)
    assert not message_module._view_cache and uri_module._parse_uri_cached.cache_info().currsize == 0
    layer.live = (TRIM_PEAK + 100) // 16  # still draining: one partial release per burst
    endpoint._after_burst(2.0 + TRIM_INTERVAL)
    assert endpoint.trims == (1 if trimming else 0)
    layer.live = 0  # drained: the final release, even though the peak was already answered once
    assert endpoint._after_burst(3.0 + TRIM_INTERVAL) is None
    assert endpoint.trims == (2 if trimming else 0)


def test_the_drained_release_collects_the_bursts_reference_cycles() -> None:
    from sip.aio import TRIM_INTERVAL, TRIM_PEAK

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    layer = _SizedLayer()
    endpoint = SipEndpoint(layer, FailingHandler())
    layer.live = TRIM_PEAK + 100
    endpoint._after_burst(0.0)
    gc.collect()
    garbage = Cycle()
    gone = weakref.ref(garbage)
    del garbage  # a cycle: reference counting cannot free it; only a collection can
    gc.disable()  # no automatic collection may do the release's work during the test
    try:
        layer.live = 60  # the partial release: no collection (the node may still be busy)
        endpoint._after_burst(1.0)
        assert gone() is not None
        layer.live = 0  # drained: a full collection, then the trim
        endpoint._after_burst(1.0 + TRIM_INTERVAL)
        assert gone() is None
    finally:
        gc.enable()


def test_a_release_due_too_soon_is_deferred_not_dropped() -> None:
    from sip.aio import TRIM_INTERVAL, TRIM_PEAK, release_memory

    trimming = release_memory()
    layer = _SizedLayer()
    endpoint = SipEndpoint(layer, FailingHandler())
    layer.live = TRIM_PEAK * 2
    endpoint._after_burst(0.0)
    layer.live = 10
    endpoint._after_burst(1.0)  # partial release at 1.0
    layer.live = TRIM_PEAK * 4  # a second burst soon after
    endpoint._after_burst(2.0)
    layer.live = 0  # drained within the interval: not now, but at 1.0 + TRIM_INTERVAL
    assert endpoint._after_burst(3.0) == 1.0 + TRIM_INTERVAL
    assert endpoint.trims == (1 if trimming else 0)
    assert endpoint._after_burst(1.0 + TRIM_INTERVAL) is None  # the deferred look (no layer timer fires)
    assert endpoint.trims == (2 if trimming else 0)
    layer.live = TRIM_PEAK - 1  # below the threshold: a small bump never costs a release
    endpoint._after_burst(100.0)
    layer.live = 0
    assert endpoint._after_burst(200.0) is None
    assert endpoint.trims == (2 if trimming else 0)