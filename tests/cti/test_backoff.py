"""cti.events.backoff: the one exponential schedule (tenacity's wait) behind the webhook outbox and the MQTT bridge."""

from __future__ import annotations

import pytest

from cti.errors import SettingsError
from cti.events.backoff import Backoff


def test_ceilings_double_from_initial_up_to_the_cap() -> None:
    b = Backoff(0.5, 30.0)
    assert [b.ceiling(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert b.ceiling(10_000) == 30.0  # no overflow far out
    assert b.ceiling(0) == 0.5  # "no failure yet" is treated as the first


@pytest.mark.parametrize("floor", [0.0, 0.5, 1.0])
def test_jitter_stays_between_the_floor_and_the_ceiling(floor: float) -> None:
    b = Backoff(1.0, 300.0, floor=floor)
    for n in range(1, 40):
        top = b.ceiling(n)
        low = top * floor if floor else 1.0
        assert b.delay(n, 0.0) == pytest.approx(low) and b.delay(n, 1.0) == pytest.approx(top)
        assert low <= b.delay(n, 0.37) <= top
        assert b.delay(n, -1.0) == b.delay(n, 0.0) and b.delay(n, 2.0) == b.delay(n, 1.0)  # rand is clamped


@pytest.mark.parametrize(("initial", "maximum", "floor"), [(0, 1, 0), (2, 1, 0), (1, 2, 1.5), (1, 2, -0.1)])
def test_impossible_settings_are_refused(initial: float, maximum: float, floor: float) -> None:
    with pytest.raises(SettingsError):
        Backoff(initial, maximum, floor=floor)
