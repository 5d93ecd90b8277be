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
parsed and answered, an event envelope built and published on a bus, and the live-adherence tracker
answering its timer with 1000 agents (asked before every bus event the adherence service reads).
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
