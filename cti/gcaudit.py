"""A test hook: find the reference cycles the node leaves behind (``CTI_TEST_GC_REPORT=FILE``).

With the variable set, the node keeps the cyclic garbage collector off (nothing frees a cycle
behind the test's back) and, on each ``SIGUSR1``, collects with ``gc.DEBUG_SAVEALL`` and writes to
FILE (JSON) what the collection found: the number of objects, and a count per type, with the
types of the project's own packages (``cti``, ``sip``, ``acd``, ``ivr``, ``config``) listed apart; and the
project's objects still alive after it (``live_ours``: what something still holds, not garbage).
A first signal clears what start-up left; the next report holds only what came after (the calls
of a test: tests/integration/test_call_cycles.py). Never set in production.
"""

from __future__ import annotations

import gc
import json
from collections import Counter
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

ENV = "CTI_TEST_GC_REPORT"
OUR_PACKAGES = ("cti", "sip", "acd", "ivr", "config")


def hold() -> None:
    """Collect once, then stop automatic collection (cycles stay until :func:`report`)."""
    gc.collect()
    gc.disable()


def report(path: Path) -> dict[str, object]:
    """Collect the garbage made since the last report and write what it was to ``path``."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        garbage = list(gc.garbage)
        gc.garbage.clear()
    finally:
        gc.set_debug(0)
    by_type: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for obj in garbage:
        kind = type(obj)
        name = f"{kind.__module__}.{kind.__qualname__}"
        by_type[name] += 1
        if kind.__module__.split(".")[0] in OUR_PACKAGES:
            ours[name] += 1
    del garbage
    live: Counter[str] = Counter()
    for obj in gc.get_objects():
        module = getattr(type(obj), "__module__", None)  # not always a str (a class may set it to anything)
        if isinstance(module, str) and module.split(".")[0] in OUR_PACKAGES:
            live[f"{module}.{type(obj).__qualname__}"] += 1
    result: dict[str, object] = {"objects": sum(by_type.values()), "ours": dict(ours),
                                 "by_type": dict(by_type.most_common(40)), "live_ours": dict(live.most_common(60))}
    path.write_text(json.dumps(result, indent=1))
    log.info("server.gc.reported", objects=result["objects"], ours=sum(ours.values()))
    return result
