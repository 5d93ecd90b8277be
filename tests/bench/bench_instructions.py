"""Instructions per operation on the call path's hot spots, counted by callgrind: a measure a busy host cannot move.

Run as a script (pytest does not collect it; needs ``valgrind``, Debian package ``valgrind``)::

    python tests/bench/bench_instructions.py [--root DIR] [--number 2000] [--cases sip,adherence]

Wall-clock and CPU-time benchmarks on a shared 2-core machine move by 15 % and more from one run to
the next (docs/performance.md). The number of instructions the interpreter executes for a piece of
work does not: it changes only when the code does, so two trees compare in one run each. For every
case the driver below runs twice under ``valgrind --tool=callgrind`` (a warm-up, then ``--number``
more operations, against the warm-up alone) and prints the difference divided by ``--number``:
instructions per operation (start-up and imports cancel out). ``--root`` imports the code of another
tree (``git archive`` of a base commit) with this script's cases, for a before/after pair.

The cases are the pieces the node's profile under load points at (``py-spy record --gil`` on the
``bench_callpath.py`` 250/s step): a SIP INVITE parsed as seen before and as a new dialog, an SDP offer
parsed and answered, an event envelope built and published on a bus, one call's records (its CDR at four
milestones taken in three batches, its queue leg and the agent-state rows of its ACD events, as the record
writer builds them on the loop), one call's eight events built, published and taken by the consumers a
node runs (the WebSocket gateway's dispatcher and replay window, the alert and adherence services, on a
real event loop), and the live-adherence tracker answering its timer with 1000 agents (asked before every
bus event the adherence service reads).
Two cases mirror what the node does per call as a whole: ``sip_call``, the 13 SIP messages of one queued
call through the node's real endpoint, transaction layer, legs and dialogs (``callpath_sip.py``: parse,
views, matching, responses and requests built and serialised), and ``sdp_call``, the call's SDP work
(the caller's offer checked, answered and serialised; the agent's offer built and its answer read).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_INVITE = """
import sys
from sip.message import parse_message  # first: the tree under measure (bench_sip_parse puts this one first)
sys.path.insert(0, BENCH)
from bench_sip_parse import INVITE, _fresh_invites
"""

CASES: dict[str, tuple[str, str, str]] = {
    # name: (setup, one operation, what it is)
    "sip_parse_seen": (_INVITE, "parse_message(INVITE)", "parse a 1,105-byte INVITE whose dialog was seen"),
    "sip_parse_new": (_INVITE + "fresh = iter(_fresh_invites(N + 101))\n", "parse_message(next(fresh))",
                      "parse an INVITE of a new dialog (every memo misses)"),
    "sdp_offer_answer": ("""
from cti.call.media import CODECS
from sip.offer_answer import negotiate
from sip.sdp import SessionDescription
BODIES = [b"v=0\\r\\no=load %d 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nc=IN IP4 127.0.0.1\\r\\nt=0 0\\r\\n"
          b"m=audio 6000 RTP/AVP 8 0 101\\r\\na=rtpmap:8 PCMA/8000\\r\\na=rtpmap:0 PCMU/8000\\r\\n"
          b"a=rtpmap:101 telephone-event/8000\\r\\na=fmtp:101 0-15\\r\\n" % n for n in range(N + 101)]
bodies = iter(BODIES)
def op():
    body = next(bodies)
    for _ in range(2):  # the node reads the caller's offer twice: checked at the door, then answered
        negotiate(SessionDescription.parse(body), CODECS, "127.0.0.1", 9)
""", "op()", "a new caller's SDP offer checked and answered (two reads)"),
    "sip_call": ("""
import sys
sys.path.insert(0, BENCH)
from callpath_sip import CallNode, quiet_logs
quiet_logs()
node = CallNode()
numbers = iter(range(10**9))
""", "node.call(next(numbers))", "the 13 SIP messages of one queued call, as the node handles them (callpath_sip.py)"),
    "sip_call_steady": ("""
import sys
sys.path.insert(0, BENCH)
from callpath_sip import CallNode, quiet_logs
quiet_logs()
node = CallNode()
numbers = iter(range(10**9))
for _ in range(1200):  # the view cache full, as on a node under load (its oldest entries dropped as new come)
    node.call(next(numbers))
""", "node.call(next(numbers))", "the same after 1,200 calls: the parse caches full, as under load"),
    "sdp_call": ("""
from cti.call.media import CODECS
from sip.offer_answer import accept_answer, answer_at_port, build_offer, negotiate
from sip.sdp import SessionDescription
OFFERS = [b"v=0\\r\\no=load %d 1 IN IP4 127.0.0.1\\r\\ns=-\\r\\nc=IN IP4 127.0.0.1\\r\\nt=0 0\\r\\n"
          b"m=audio 6000 RTP/AVP 8 0 101\\r\\na=rtpmap:8 PCMA/8000\\r\\na=rtpmap:0 PCMU/8000\\r\\n"
          b"a=rtpmap:101 telephone-event/8000\\r\\na=fmtp:101 0-15\\r\\na=ptime:20\\r\\n" % n for n in range(N + 101)]
ANSWERS = [body.replace(b"o=load", b"o=agent").replace(b"6000", b"7000") for body in OFFERS]
bodies = iter(zip(OFFERS, ANSWERS))
def op():
    offer_body, answer_body = next(bodies)
    # the door's offer check (cti.call.offercheck), then CallMedia.answer_caller, offer_agent, agent_answered
    negotiate(SessionDescription.parse(offer_body), CODECS, "127.0.0.1", 9)
    first = negotiate(SessionDescription.parse(offer_body), CODECS, "127.0.0.1", 9)
    answer_at_port(first, 20000).sdp.serialize().encode()
    offer = build_offer("127.0.0.1", 20002, (first.media.codec, *(c for c in CODECS if c is not first.media.codec)))
    offer.serialize().encode()
    accept_answer(offer, SessionDescription.parse(answer_body))
""", "op()", "one call's SDP: the caller's offer checked, answered, serialised; the agent's offer built, answered"),
    "event_publish": ("""
from cti.events.bus import Bus
from cti.events.registry import Envelope
bus = Bus()
sub = bus.subscribe(["call.*"], maxsize=N + 200)  # room for every envelope: none is dropped
DATA = {"call_id": "c1", "queue": "load", "priority": 0, "position": 1, "vip": False, "caller_number": "100"}
def op():
    bus.publish(Envelope.new("call.queued", DATA, node="bench", now=1.8e9))
""", "op()", "build a call.queued envelope (new id) and publish it to one subscriber"),
    "call_records": ("""
import asyncio
from acd import AgentState as S, AgentStateChanged, CallAnswered, CallEnded, CallOffered, CallQueued
from cti.call.detail import CallDetail
from cti.node.records import CallRecords
loop = asyncio.new_event_loop()
asyncio.events._set_running_loop(loop)  # write_waited makes futures; nothing runs them here
class _Store: pass
DETAILS = {}
records = CallRecords(_Store(), "bench", DETAILS.get, clock=lambda: 1.8e9 + 5, site="bench")
counter = iter(range(N + 200))
T = 1.8e9
def take():                                     # the writer's share on the loop: a batch taken
    q = records._writes
    while not q.empty():
        records._job(q.get_nowait())
    records._committing.clear()
def op():
    n = next(counter)
    cid = "c%d" % n
    agent = str(3001 + n % 1000)
    d = CallDetail(call_id=cid, sip_call_id="%d-load@127.0.0.1" % n, trunk="load", caller="100", caller_name="",
                   dialled="200", arrived_at=T)
    DETAILS[cid] = d
    records.milestone(cid, d)                      # arrival
    d.queued_at, d.queue = T + 0.01, "load"
    records.on_acd_event(CallQueued(at=1.0, call_id=cid, queue_id="load", priority=0), T + 0.01)
    records.milestone(cid, d)                      # queued
    take()                                         # (a batch: arrival and queue entry within 50 ms)
    records.on_acd_event(AgentStateChanged(at=1.0, agent_id=agent, previous=S.AVAILABLE, previous_reason=None,
                                           state=S.RESERVED, reason=None, call_id=cid), T + 0.02)
    records.on_acd_event(CallOffered(at=1.0, call_id=cid, queue_id="load", agent_id=agent, offer_id=n), T + 0.02)
    d.agent, d.agent_answered_at = agent, T + 0.03
    records.on_acd_event(AgentStateChanged(at=1.0, agent_id=agent, previous=S.RESERVED, previous_reason=None,
                                           state=S.ON_CALL, reason=None, call_id=cid), T + 0.03)
    records.on_acd_event(CallAnswered(at=1.0, call_id=cid, queue_id="load", agent_id=agent, wait_s=0.02), T + 0.03)
    records.milestone(cid, d)                      # agent answered
    take()
    d.ended_at, d.hung_up_by, d.end_reason = T + 1.03, "caller", "caller_hangup"
    records.on_acd_event(CallEnded(at=2.0, call_id=cid, queue_id="load", agent_id=agent, talk_s=1.0, hold_s=0.0),
                         T + 1.03)
    records.on_acd_event(AgentStateChanged(at=2.0, agent_id=agent, previous=S.ON_CALL, previous_reason=None,
                                           state=S.AVAILABLE, reason=None, call_id=None), T + 1.03)
    records.call_ended(cid, d)
    del DETAILS[cid]
    take()
""", "op()", "one call's CDR (4 milestones, 3 batches), queue-leg and agent-state rows as the writer takes them"),
    "call_events": ("""
import asyncio, math
from acd import AgentState as S, AgentStateChanged
from cti.adherence.service import AdherenceService
from cti.call.detail import CallDetail
from cti.events.bus import Bus
from cti.events.publish import Publisher
from cti.floor.alerts.service import AlertService
from cti.gateway.ws import Gateway
T = 1.8e9
bus = Bus(first_seq=1)
publisher = Publisher(bus, "bench", clock=lambda: T)
gateway = Gateway(control=None, bus=bus, node="bench", clock=lambda: T)
alerts = AlertService(bus, "bench", clock=lambda: T)
adherence = AdherenceService(bus, None, "bench", clock=lambda: T)
adherence._next_reload = math.inf
loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
async def _start():
    sub = bus.subscribe("*", maxsize=1000, name="ws-gateway")
    loop.create_task(gateway._dispatch_all(sub))
    loop.create_task(alerts.run(alerts.subscribe()))
    loop.create_task(adherence.run(adherence.subscribe()))
    await asyncio.sleep(0)
loop.run_until_complete(_start())
counter = iter(range(N + 200))
def change(agent, previous, state, cid):
    publisher.agent_state(AgentStateChanged(at=1.0, agent_id=agent, previous=previous, previous_reason=None,
                                            state=state, reason=None, call_id=cid))
async def one_call():
    n = next(counter)
    cid, agent = "c-%d" % n, str(3001 + n % 1000)
    d = CallDetail(call_id=cid, sip_call_id="%d-load@127.0.0.1" % n, trunk="load", caller="100", caller_name="",
                   dialled="200", arrived_at=T, queue="load", queued_at=T)
    publisher.call_arrived(d)
    publisher.call_queued(d, 1)
    change(agent, S.AVAILABLE, S.RESERVED, cid)
    publisher.call_offered(d, agent, "load", 0.01, {})
    change(agent, S.RESERVED, S.ON_CALL, cid)
    d.agent, d.agent_answered_at = agent, T
    publisher.call_answered(d, agent, "load", 0.01)
    for _ in range(3):
        await asyncio.sleep(0)   # the consumers take what waits (a busy loop runs them between other work)
    d.ended_at, d.end_reason = T + 1, "caller_hangup"
    publisher.call_ended(d)
    change(agent, S.ON_CALL, S.AVAILABLE, None)
    for _ in range(3):
        await asyncio.sleep(0)
def op():
    loop.run_until_complete(one_call())
""", "op()", "one call's 8 events built, published and taken by the node's consumers (gateway, alerts, adherence)"),
    "adherence_timer": ("""
from cti.adherence.tracker import AdherenceTracker
tracker = AdherenceTracker()
for n in range(1000):
    tracker.state_changed(str(3000 + n), "available", None, 1.8e9)
""", "tracker.get_timer(1.8e9)", "the adherence tracker's next timer, 1000 agents without a plan"),
}

_DRIVER = """
import gc
N = {count}
BENCH = {bench!r}
{setup}
gc.disable()
for _ in range(100):
    {op}
for _ in range(N):
    {op}
"""


def _valgrind() -> str | None:
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / "valgrind"
        if candidate.is_file():
            return str(candidate)
    return None


def instructions(root: Path, setup: str, op: str, count: int) -> int:
    """Instructions callgrind counts for the whole driver process with ``count`` measured operations."""
    code = _DRIVER.format(count=count, bench=str(ROOT / "tests" / "bench"), setup=textwrap.dedent(setup), op=op)
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0"}
    run = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c",
                          code], capture_output=True, text=True, env=env, cwd=root, timeout=900)
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        raise RuntimeError(f"the driver failed (rc {run.returncode}):\n{run.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree whose code is measured")
    parser.add_argument("--number", type=int, default=2000, help="operations measured per case")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    args = parser.parse_args()
    if _valgrind() is None:
        print("valgrind is not installed (Debian package valgrind)", file=sys.stderr)
        return 2
    root = args.root.resolve()
    print(f"instructions per operation (callgrind), code of {root}, python {sys.version.split()[0]}")
    for name in [c for c in args.cases.split(",") if c]:
        setup, op, what = CASES[name]
        base = instructions(root, setup, op, 0)
        measured = instructions(root, setup, op, args.number)
        print(f"  {name:18} {(measured - base) / args.number:>12,.0f}   {what}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
