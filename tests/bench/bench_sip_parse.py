"""Benchmark of the SIP message layer: parse and serialise a typical INVITE with an SDP body.

Run as a script (pytest does not collect it)::

    python tests/bench/bench_sip_parse.py [--rounds 7] [--number 5000]

Prints messages/s and µs/message for: parse only, serialise only, parse + serialise, and parse
plus the typed views a transaction and dialog layer read (top Via, CSeq, From, To, Call-ID,
Contact, Max-Forwards) several times, as they do. Best of several rounds, with ``timeit``.

The parser memoises typed header values and URIs (a dialog's messages repeat them), so the
same bytes parsed again are the best case. The "new dialog" rows parse messages whose Call-ID,
tags, branch and user part are new each time (the worst case: every cache misses).
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from sip.message import Request, parse_message  # noqa: E402

SDP = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 198.51.100.7\r\n"
    b"s=-\r\n"
    b"c=IN IP4 198.51.100.7\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 0 8 101\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-16\r\n"
    b"a=ptime:20\r\n"
    b"a=sendrecv\r\n"
)

INVITE = (
    "INVITE sip:100@cti.example.com:5060 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 203.0.113.20:5060;branch=z9hG4bK-524287-1---a2b5f1e8c9d0;rport\r\n"
    "Via: SIP/2.0/UDP 198.51.100.7:5062;branch=z9hG4bK776asdhds;received=198.51.100.7;rport=5062\r\n"
    "Record-Route: <sip:203.0.113.20;lr;ftag=as4f8e2c1b>\r\n"
    "Max-Forwards: 69\r\n"
    'From: "Alice Caller" <sip:+15551230001@trunk.example.net;user=phone>;tag=as4f8e2c1b\r\n'
    "To: <sip:100@cti.example.com>\r\n"
    "Call-ID: 3848276298220188511@198.51.100.7\r\n"
    "CSeq: 102 INVITE\r\n"
    "Contact: <sip:+15551230001@198.51.100.7:5062;transport=udp>\r\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE, REFER, SUBSCRIBE, NOTIFY, INFO, PUBLISH, MESSAGE\r\n"
    "Supported: replaces, timer, 100rel\r\n"
    "Session-Expires: 1800;refresher=uac\r\n"
    "Min-SE: 90\r\n"
    "P-Asserted-Identity: <sip:+15551230001@trunk.example.net;user=phone>\r\n"
    "User-Agent: ExampleGateway 4.2.1\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(SDP)}\r\n"
    "\r\n"
).encode() + SDP


def _typed_views(request: Request) -> None:
    for _ in range(3):  # transaction matching, dialog creation, the app: each reads them again
        _ = (request.top_via.branch, request.cseq, request.from_.tag, request.to.tag, request.call_id)
    _ = (request.contacts, request.max_forwards, request.vias)


def _fresh_invites(count: int) -> list[bytes]:
    """``count`` INVITEs that differ where dialogs differ (Call-ID, tags, branch, caller)."""
    text = INVITE.decode()
    return [
        text.replace("as4f8e2c1b", f"t{n:08x}").replace("a2b5f1e8c9d0", f"b{n:011x}")
        .replace("3848276298220188511", f"c{n:019d}").replace("+15551230001", f"+1555{n:07d}").encode()
        for n in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--number", type=int, default=5000)
    args = parser.parse_args()

    message = parse_message(INVITE)
    assert isinstance(message, Request) and bytes(message) == INVITE
    fresh = _fresh_invites(args.number * (args.rounds + 1))
    feed = iter(fresh)
    cases = {
        "parse": lambda: parse_message(INVITE),
        "serialise": lambda: bytes(message),
        "parse + serialise": lambda: bytes(parse_message(INVITE)),
        "parse + typed views": lambda: _typed_views(parse_message(INVITE)),  # type: ignore[arg-type]
        "parse, new dialog": lambda: parse_message(next(feed)),
        "+ typed views, new dialog": lambda: _typed_views(parse_message(next(feed))),  # type: ignore[arg-type]
    }
    print(f"SIP message benchmark: {len(INVITE)}-byte INVITE with {len(SDP)}-byte SDP, python {sys.version.split()[0]}")
    print(f"best of {args.rounds} rounds x {args.number} messages")
    for name, func in cases.items():
        if "new dialog" in name:
            feed = iter(fresh)  # each of these cases parses messages not seen before
        best = min(timeit.Timer(func).repeat(repeat=args.rounds, number=args.number)) / args.number
        print(f"  {name:26} {1 / best:>10,.0f} msg/s  {best * 1e6:8.1f} µs/msg")


if __name__ == "__main__":
    main()
