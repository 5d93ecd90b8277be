"""What the node re-creates or lets go of once a burst of SIP traffic has drained (``compact()``, registered with
``sip.aio.SipEndpoint.add_compactable``), and what it builds at start-up instead of at the first traffic: each
keeps its contents (or, for a cache, its answers) and its bounds (docs/reliability.md, "What stays after the drain")."""

from __future__ import annotations

import abc
import collections.abc
import types
from typing import Any

import structlog

from cti.app import AbcCaches
from cti.events.bus import Bus
from cti.events.registry import Envelope
from cti.gateway import Encoding, Gateway
from cti.gateway.frames import EncodedCache
from cti.logging import bind_module_loggers
from tests.cti.test_gateway_fake import FakeControl


def _envelope(n: int) -> Envelope:
    return Envelope(type="call.answered", id=f"id-{n}", ts=float(n), node="n", data={"call_id": f"c{n}"}, seq=n)


def test_the_frame_cache_forgets_its_entries_and_encodes_the_same_frames_again() -> None:
    cache = EncodedCache(size=4)
    envelopes = [_envelope(n) for n in range(6)]
    before = {(e.id, enc): cache.encode(e, enc) for e in envelopes for enc in Encoding}
    assert len(cache) == 4  # bounded
    cache.compact()
    assert len(cache) == 0
    after = {(e.id, enc): cache.encode(e, enc) for e in envelopes for enc in Encoding}
    assert after == before and len(cache) == 4  # the same frames, and still bounded


def test_the_gateway_compacts_its_frame_cache() -> None:
    gateway = Gateway(control=FakeControl(), bus=Bus(), node="n")
    envelope = _envelope(1)
    frame = gateway._cache.json_frame(envelope)
    gateway.compact()
    assert len(gateway._cache) == 0
    assert gateway._cache.json_frame(envelope) == frame


class _Shape(abc.ABC):  # noqa: B024 - an ABC by its hook alone
    @classmethod
    def __subclasshook__(cls, other: type) -> bool:
        return hasattr(other, "area")


class _Square:
    def area(self) -> int:
        return 4


def test_abc_caches_are_emptied_and_give_the_same_answers() -> None:
    values: list[Any] = [_Square(), 3, "text", {"a": 1}, [1], (1,), b"x"]
    bases: list[type] = [_Shape, collections.abc.Mapping, collections.abc.Sequence, collections.abc.Hashable]
    before = [[isinstance(v, b) for b in bases] for v in values]
    _, cache, negative, _ = abc._get_dump(_Shape)  # type: ignore[attr-defined]
    assert cache and negative  # _Square found by the hook, the others refused: both remembered
    AbcCaches().compact()
    for base in (_Shape, collections.abc.Mapping):
        _, cache, negative, _ = abc._get_dump(base)  # type: ignore[attr-defined]
        assert not cache and not negative
    assert [[isinstance(v, b) for b in bases] for v in values] == before


def test_module_loggers_are_built_once_at_start_up() -> None:
    saved = structlog.get_config()
    structlog.configure(cache_logger_on_first_use=True)  # as the node's configure_logging does
    module = types.ModuleType("cti._test_loggers")
    module.log = structlog.get_logger("cti._test_loggers")  # type: ignore[attr-defined]
    try:
        assert "bind" not in vars(module.log)  # a lazy proxy: nothing built yet
        assert bind_module_loggers([module]) == 1
        assert "bind" in vars(module.log)  # built and cached on the proxy
        assert module.log.bind() is module.log.bind()  # the same logger from now on
    finally:
        structlog.configure(**saved)
