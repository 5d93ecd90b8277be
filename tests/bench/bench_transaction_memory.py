"""What a live server transaction costs in memory under a flood of hostile SIP.

Run: ``python tests/bench/bench_transaction_memory.py [--messages 20000] [--status 404]``. Not collected by pytest.

The fuzz benchmark's messages (tests/support/sipfuzz.py, seed 13) are parsed and fed to one
:class:`sip.TransactionLayer` with no clock moving, and every new request is answered at once with
``--status`` (what the node does with most hostile requests: a 4xx, then 32 s in Completed by Timer J
or H). Printed: live transactions, the Python memory they hold (tracemalloc, after a full collection)
per transaction, the blocks per transaction, and the source lines holding the most.
"""

from __future__ import annotations

import argparse
import gc
import logging
import random
import sys
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import structlog  # noqa: E402

from sip.errors import LocalSipError, RemoteSipError  # noqa: E402
from sip.events import Destination, RequestReceived  # noqa: E402
from sip.message import parse_message, response_to  # noqa: E402
from sip.transaction import TransactionLayer  # noqa: E402
from tests.support.sipfuzz import Mutator  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--status", type=int, default=404, help="the final answer to every new request")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    mutator = Mutator(random.Random(args.seed), 5060)
    data = [mutator.message("UDP", 40000 + n % 4) for n in range(args.messages)]
    source = Destination(transport="UDP", addr=("127.0.0.1", 40000))
    layer = TransactionLayer()
    gc.collect()
    tracemalloc.start()
    blocks = sys.getallocatedblocks()
    for raw in data:
        try:
            layer.receive_message(parse_message(raw), source, 0.0)
        except RemoteSipError:
            continue
        while (event := layer.next_event()) is not None:
            if isinstance(event, RequestReceived) and event.transaction is not None:
                try:
                    layer.send_response(response_to(event.request, args.status), 0.0)
                except (LocalSipError, RemoteSipError):
                    pass  # a request the answer cannot be built for (the node answers those statelessly)
        layer.messages_to_send()
    del data, raw
    gc.collect()
    held, _ = tracemalloc.get_traced_memory()
    live = len(layer)
    print(f"{live} live transactions hold {held / 2**20:.1f} MB of Python memory: {held / live / 1024:.2f} KiB and "
          f"{(sys.getallocatedblocks() - blocks) / live:.0f} blocks a transaction")
    for stat in tracemalloc.take_snapshot().statistics("lineno")[:10]:
        frame = stat.traceback[0]
        print(f"  {stat.size / 1024:>8.0f} KiB {stat.count:>7} blocks  {frame.filename}:{frame.lineno}")


if __name__ == "__main__":
    main()
