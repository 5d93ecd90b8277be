"""Call admission (cti/node/admission.py): trunk channels, node calls, new calls a second."""

from __future__ import annotations

from cti.node.admission import ANSWERS, Admission, Limits, LoadMeter, Refusal


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_no_limits_admit_everything() -> None:
    admission = Admission(Limits(), {}, Clock())
    assert all(admission.admit("carrier") is None for _ in range(10_000))
    assert admission.live == 10_000


def test_a_full_trunk_is_busy_until_one_of_its_calls_ends() -> None:
    admission = Admission(Limits(), {"carrier": 2, "other": 0}, Clock())
    assert admission.admit("carrier") is None
    assert admission.admit("carrier") is None
    assert admission.admit("carrier") is Refusal.TRUNK_FULL
    assert admission.admit("other") is None  # another trunk's channels are its own
    admission.ended("carrier")
    assert admission.admit("carrier") is None
    assert admission.live_on("carrier") == 2


def test_the_node_limit_counts_every_trunk() -> None:
    admission = Admission(Limits(max_calls=3), {}, Clock())
    assert [admission.admit(t) for t in ("a", "b", "a", "b")] == [None, None, None, Refusal.NODE_FULL]
    admission.ended("b")
    assert admission.admit("a") is None


def test_the_rate_allows_a_burst_of_one_second_then_the_steady_rate() -> None:
    clock = Clock()  # steps of 1/8 s: exact in binary, so the token counts are exact too
    admission = Admission(Limits(max_calls_per_second=4), {}, clock)
    assert [admission.admit("t") for _ in range(5)] == [None] * 4 + [Refusal.RATE]
    clock.now += 0.125  # half a token back
    assert admission.admit("t") is Refusal.RATE
    clock.now += 0.125  # one whole token
    assert admission.admit("t") is None
    assert admission.admit("t") is Refusal.RATE
    clock.now += 60  # idle: the bucket refills to one second's worth, not more
    assert [admission.admit("t") for _ in range(5)] == [None] * 4 + [Refusal.RATE]
    # Offered 16 a second for 64 s: admitted at the configured 4 a second.
    admitted = 0
    for _ in range(1024):
        clock.now += 0.0625
        admitted += admission.admit("t") is None
    assert admitted == 256


def test_a_rate_below_one_a_second_still_admits_one_call() -> None:
    clock = Clock()
    admission = Admission(Limits(max_calls_per_second=0.5), {}, clock)
    assert admission.admit("t") is None
    assert admission.admit("t") is Refusal.RATE
    clock.now += 2.0
    assert admission.admit("t") is None


def test_a_refused_call_takes_no_token_and_no_place() -> None:
    clock = Clock()
    admission = Admission(Limits(max_calls=1, max_calls_per_second=1), {"t": 5}, clock)
    assert admission.admit("t") is None
    clock.now += 10
    assert admission.admit("t") is Refusal.NODE_FULL  # refused before the bucket is touched
    admission.ended("t")
    assert admission.admit("t") is None  # the token is still there
    assert admission.live == 1


def test_ending_more_calls_than_were_admitted_never_goes_negative() -> None:
    admission = Admission(Limits(max_calls=1), {}, Clock())
    admission.ended("t")
    assert admission.live == 0
    assert admission.admit("t") is None
    assert admission.admit("t") is Refusal.NODE_FULL


def test_each_refusal_has_its_sip_answer() -> None:
    assert ANSWERS[Refusal.TRUNK_FULL] == (486, ())
    assert ANSWERS[Refusal.NODE_FULL][0] == ANSWERS[Refusal.RATE][0] == 503
    assert dict(ANSWERS[Refusal.NODE_FULL][1]) == {"Retry-After": "5"}  # full for a while: go elsewhere
    assert ANSWERS[Refusal.RATE][1] == ()  # only this call goes elsewhere, not the node out of rotation
    assert ANSWERS[Refusal.OVERLOADED] == (503, ())  # the node is behind now: this call goes elsewhere


def test_the_meter_enters_overload_after_sustained_lag_and_leaves_after_sustained_calm() -> None:
    meter = LoadMeter(0.3)
    n = LoadMeter.SUSTAIN
    assert not any(meter.tick(0.5) for _ in range(n - 1)) and not meter.overloaded
    assert not meter.tick(0.0) and not meter.overloaded  # a tick on time starts the count again
    assert [meter.tick(0.5) for _ in range(n)] == [False] * (n - 1) + [True] and meter.overloaded
    assert not any(meter.tick(0.2) for _ in range(3 * n)) and meter.overloaded  # under the bound, not within half
    assert [meter.tick(0.1) for _ in range(n)] == [False] * (n - 1) + [True] and not meter.overloaded
    assert meter.lag_s == 0.1


def test_one_long_pause_is_not_overload() -> None:
    meter = LoadMeter(0.3)
    assert not meter.tick(5.0) and not any(meter.tick(0.001) for _ in range(100)) and not meter.overloaded


def test_a_meter_without_a_bound_never_refuses() -> None:
    admission = Admission(Limits(), {}, Clock(), LoadMeter(0.0))
    assert not any(admission.meter.tick(60.0) for _ in range(100))
    assert admission.admit("carrier") is None


def test_an_overloaded_node_refuses_new_calls_without_counting_them() -> None:
    meter = LoadMeter(0.3)
    admission = Admission(Limits(max_calls_per_second=1), {"carrier": 5}, Clock(), meter)
    for _ in range(LoadMeter.SUSTAIN):
        meter.tick(1.0)
    assert admission.admit("carrier") is Refusal.OVERLOADED
    assert admission.live == 0
    for _ in range(LoadMeter.SUSTAIN):
        meter.tick(0.0)
    assert admission.admit("carrier") is None  # the token was not spent on the refused call
