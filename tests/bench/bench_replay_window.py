"""What one event costs in the WebSocket gateway's replay window, measured with tracemalloc.

Run: ``python tests/bench/bench_replay_window.py [--events 30000]`` (a few seconds; not collected by pytest).

The events are those of the soak benchmark's calls (tests/bench/bench_soak.py), in its proportions: per call
``call.arrived``, ``call.queued``, ``queue.stats``, ``call.offered``, ``agent.state_changed`` (offering, on call,
wrap-up, available), ``call.answered``, ``call.ended`` and another ``queue.stats``; with ids, numbers and times
that vary as they do on a node (a ULID per event, a Call-ID per call, 260 agents). Printed, for the same events:

* **envelopes**: the window as it was before cti/gateway/replay.py kept frames (a deque of the envelopes
  themselves, each with its ``data`` dict), bytes per event;
* **replay log**: :class:`~cti.gateway.replay.ReplayLog` (compressed blocks of JSON frames), bytes per event as
  tracemalloc sees them and as the log accounts them (:attr:`~cti.gateway.replay.ReplayLog.nbytes`, the figure
  ``http.ws_replay_bytes`` bounds; the open block's frames are in both), the time an append costs
  (on average, p50, p99, p99.9) and a full replay.
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
import tracemalloc
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cti.events.registry import Envelope, EventIdFactory  # noqa: E402
from cti.gateway.replay import ReplayLog  # noqa: E402


def soak_events(count: int, seed: int = 7) -> Iterator[Envelope]:
    """``count`` envelopes shaped like the soak's, with ``seq`` 1, 2, ... and ``ts`` 50 a second."""
    rng = random.Random(seed)
    ids = EventIdFactory()
    seq, ts, call = 0, 1_765_000_000.0, 0
    stats = {"queue": "load", "waiting": 0, "longest_wait_seconds": 0.0, "agents_logged_in": 260,
             "agents_available": 60, "agents_busy": 200, "agents_offering": 0, "offered": 0, "answered": 0,
             "abandoned": 0, "service_level": 1.0, "asa_seconds": 0.4, "window_seconds": 900}
    while True:
        call += 1
        call_id = f"{rng.getrandbits(64):016x}-{call}@127.0.0.1"
        agent = f"{3001 + rng.randrange(260)}"
        caller = f"+3312345{rng.randrange(10_000):04d}"
        wait = round(rng.uniform(0.05, 0.6), 3)
        talk = round(rng.uniform(35, 56), 3)
        stats = {**stats, "offered": stats["offered"] + 1, "answered": stats["answered"] + 1,
                 "asa_seconds": round(rng.uniform(0.2, 0.6), 3)}
        sequence: list[tuple[str, dict[str, Any]]] = [
            ("call.arrived", {"call_id": call_id, "caller_number": caller, "caller_name": None,
                              "dialled_number": "200", "trunk": "carrier"}),
            ("call.queued", {"call_id": call_id, "queue": "load", "priority": 0, "position": 1, "vip": False,
                             "caller_number": caller}),
            ("queue.stats", {**stats, "waiting": 1}),
            ("call.offered", {"call_id": call_id, "agent_id": agent, "queue": "load", "caller_number": caller,
                              "caller_name": None, "dialled_number": "200", "wait_seconds": wait, "ivr_inputs": {},
                              "crm": None, "vip": False, "recording_serial": None}),
            ("agent.state_changed", {"agent_id": agent, "state": "offering", "previous_state": "available",
                                     "reason": None, "call_id": call_id, "wrap_up_s": None}),
            ("call.answered", {"call_id": call_id, "agent_id": agent, "queue": "load", "wait_seconds": wait,
                               "recording_serial": None}),
            ("agent.state_changed", {"agent_id": agent, "state": "on_call", "previous_state": "offering",
                                     "reason": None, "call_id": call_id, "wrap_up_s": None}),
            ("call.ended", {"call_id": call_id, "reason": "caller_hangup", "duration_seconds": round(talk + wait, 3),
                            "talk_seconds": talk, "agent_id": agent, "queue": "load", "recording_serial": None}),
            ("agent.state_changed", {"agent_id": agent, "state": "wrap_up", "previous_state": "on_call",
                                     "reason": None, "call_id": call_id, "wrap_up_s": 0}),
            ("agent.state_changed", {"agent_id": agent, "state": "available", "previous_state": "wrap_up",
                                     "reason": None, "call_id": None, "wrap_up_s": None}),
            ("queue.stats", {**stats, "waiting": 0}),
        ]
        for type_, data in sequence:
            seq += 1
            ts += 0.02
            now = round(ts, 3)
            yield Envelope(type=type_, id=ids.new(now), ts=now, node="cti-a", data=data).sequenced(seq)
            if seq >= count:
                return


def traced(build: Callable[[], object]) -> tuple[int, object]:
    """Bytes still allocated by ``build()`` once it returns (its result kept alive), and the result."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    kept = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return after - before, kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=30_000, help="events in the window (the soak keeps ~30 000)")
    args = parser.parse_args()
    n = args.events

    def envelopes() -> deque[Envelope]:
        return deque(soak_events(n))

    def replay_log() -> ReplayLog:
        log = ReplayLog(last_seq=0, max_events=10 * n, max_age_s=1e9, max_bytes=2**40)
        for envelope in soak_events(n):
            log.append(envelope, envelope.ts)
        return log

    old_bytes, _ = traced(envelopes)
    new_bytes, kept = traced(replay_log)
    assert isinstance(kept, ReplayLog)
    frames = [e.to_json() for e in soak_events(n)]
    raw = sum(len(f) for f in frames)

    log = ReplayLog(last_seq=0, max_events=10 * n, max_age_s=1e9, max_bytes=2**40)
    events = list(soak_events(n))
    took: list[float] = []
    for envelope, frame in zip(events, frames, strict=True):
        t1 = time.perf_counter()
        log.append(envelope, envelope.ts, frame)
        took.append(time.perf_counter() - t1)
    append_us = sum(took) / n * 1e6
    took.sort()
    p50, p99, p999 = (took[int(n * q)] * 1e6 for q in (0.5, 0.99, 0.999))
    t0 = time.perf_counter()
    replayed = log.since(0, events[-1].ts) or []
    since_ms = (time.perf_counter() - t0) * 1e3
    assert [e.frame for e in replayed] == frames, "the replay must give back exactly the frames appended"

    print(f"{n} soak-shaped events; their JSON frames average {raw / n:.0f} bytes")
    print(f"  envelopes (the window before):   {old_bytes / n:7.0f} bytes/event  ({old_bytes / 2**20:6.1f} MiB)")
    print(f"  replay log (tracemalloc):        {new_bytes / n:7.0f} bytes/event  ({new_bytes / 2**20:6.1f} MiB)")
    print(f"  replay log (its own account):    {kept.nbytes / n:7.0f} bytes/event  ({kept.nbytes / 2**20:6.1f} MiB)")
    print(f"  ratio before/after: {old_bytes / new_bytes:.1f}x")
    print(f"  append (JSON encoding excluded): {append_us:.1f} us/event on average, p50 {p50:.0f} us, "
          f"p99 {p99:.0f} us, p99.9 {p999:.0f} us; "
          f"replaying all {n}: {since_ms:.0f} ms ({since_ms * 1e3 / n:.1f} us/event)")


if __name__ == "__main__":
    main()
