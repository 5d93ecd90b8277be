"""Call admission (cti/node/admission.py): trunk channels, node calls, new calls a second."""

from __future__ import annotations

from cti.node.admission import ANSWERS, Admission, Limits, Refusal


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
