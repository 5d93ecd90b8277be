"""``/metrics``: the node's counters exposed through ``prometheus_client``.

The node's figures live in the components that own them (the call registry, the SIP stack, the bus,
the HTTP guard, the gateway, webhooks, MQTT); each hands in a function returning :class:`MetricFamily`
values, read at every scrape. :class:`FamilyCollector` is a ``prometheus_client`` custom collector over
those functions, and :func:`render_metrics` is ``generate_latest`` over a registry holding it: the
library writes the text format (0.0.4: escaping, float formatting, sorted labels), we write none.

Counters are named with their ``_total`` suffix here, as they appear on the wire.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from cti.errors import SettingsError

__all__ = ["METRICS_CONTENT_TYPE", "ExtraMetrics", "FamilyCollector", "MetricFamily", "render_metrics"]

METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # what generate_latest writes


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """One metric family for ``/metrics`` (the node's own, and the gateway's, webhooks', MQTT's)."""

    name: str
    kind: Literal["counter", "gauge"]
    help: str
    samples: Sequence[tuple[Mapping[str, str], float]]  # (labels, value)


ExtraMetrics = Callable[[], Iterable[MetricFamily]]


def _metric(family: MetricFamily) -> Metric:
    """``family`` as a ``prometheus_client`` metric (a counter's family name drops ``_total``, as the library wants).

    Raises:
        SettingsError: a counter whose name does not end in ``_total``.
    """
    name = family.name
    if family.kind == "counter":
        if not name.endswith("_total"):
            raise SettingsError(f"counter {name!r} must end in _total")
        name = name.removesuffix("_total")
    metric = Metric(name, family.help, family.kind)
    for labels, value in family.samples:
        metric.add_sample(family.name, dict(labels), float(value))
    return metric


class FamilyCollector(Collector):
    """A custom collector: at each scrape, the families the ``sources`` return now, in order."""

    def __init__(self, sources: Sequence[ExtraMetrics]) -> None:
        self._sources = list(sources)

    def collect(self) -> Iterator[Metric]:
        for source in self._sources:
            for family in source():
                yield _metric(family)


def render_metrics(sources: Sequence[ExtraMetrics]) -> bytes:
    """The text exposition of every family the ``sources`` return, in their order."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FamilyCollector(sources))
    return generate_latest(registry)
