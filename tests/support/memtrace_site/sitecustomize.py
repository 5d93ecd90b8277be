"""Memory probe inside a server started by a benchmark (tests/support/memtrace.py puts this folder on PYTHONPATH).

Python imports ``sitecustomize`` at start-up. With ``CTI_MEMTRACE_DIR`` set, this starts tracemalloc
(``CTI_MEMTRACE_FRAMES`` frames; 0 leaves it off) and a daemon thread that looks for
``<dir>/<name>.request`` once a second and answers with ``<name>.gc.json`` (live objects by type,
after a full collection) and, when tracing, ``<name>.tracemalloc`` (a snapshot), then ``<name>.done``.
The thread only reads the heap: it changes nothing in the server.
"""

from __future__ import annotations

import os

_DIR = os.environ.get("CTI_MEMTRACE_DIR")


def _serve(directory: str, tracing: bool) -> None:
    import collections
    import gc
    import json
    import time
    import tracemalloc
    from pathlib import Path

    folder = Path(directory)
    while True:
        time.sleep(1.0)
        for request in sorted(folder.glob("*.request")):
            name = request.stem
            request.unlink()
            gc.collect()
            counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
            (folder / f"{name}.gc.json").write_text(json.dumps(dict(counts.most_common(400))))
            if tracing:
                tracemalloc.take_snapshot().dump(str(folder / f"{name}.tracemalloc"))
            (folder / f"{name}.done").write_text("")


if _DIR:
    import threading
    import tracemalloc

    _frames = int(os.environ.get("CTI_MEMTRACE_FRAMES", "0") or 0)
    if _frames > 0:
        tracemalloc.start(_frames)
    threading.Thread(target=_serve, args=(_DIR, _frames > 0), name="memtrace", daemon=True).start()
