"""Targets per queue or team and the gap of a figure to each (config ``reports.queue_targets`` /
``reports.team_targets``; docs/reports.md). Pure."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TARGET_KINDS", "Direction", "TargetGap", "gaps"]


class Direction(enum.Enum):
    """Whether a figure meets its target by being at least or at most the target."""

    AT_LEAST = "at_least"
    AT_MOST = "at_most"


TARGET_KINDS: Mapping[str, Direction] = {
    "service_level": Direction.AT_LEAST,
    "answer_rate": Direction.AT_LEAST,
    "abandon_rate": Direction.AT_MOST,
    "asa_s": Direction.AT_MOST,
    "aht_s": Direction.AT_MOST,
    "occupancy": Direction.AT_LEAST,
    "utilisation": Direction.AT_LEAST,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetGap:
    """One figure against its target: ``gap = actual − target`` (None when the figure is None)."""

    figure: str
    target: float
    actual: float | None
    gap: float | None
    met: bool | None
    direction: Direction

    def to_json(self) -> dict[str, Any]:
        return {"target": self.target, "actual": self.actual, "gap": self.gap, "met": self.met,
                "direction": self.direction.value}


def gaps(figures: Mapping[str, Any], targets: Mapping[str, float]) -> dict[str, TargetGap]:
    """The gap of each targeted figure (a figure of ``None``, e.g. no calls, has no gap and is not judged).

    Raises:
        KeyError: a target names a figure that has no direction in :data:`TARGET_KINDS`.
    """
    out: dict[str, TargetGap] = {}
    for name, target in targets.items():
        direction = TARGET_KINDS[name]
        actual = figures.get(name)
        if actual is None:
            out[name] = TargetGap(figure=name, target=target, actual=None, gap=None, met=None, direction=direction)
            continue
        met = actual >= target if direction is Direction.AT_LEAST else actual <= target
        out[name] = TargetGap(figure=name, target=target, actual=float(actual), gap=float(actual) - target,
                              met=met, direction=direction)
    return out
