"""Memory probe inside a server started by a benchmark (tests/support/memtrace.py puts this folder on PYTHONPATH).

Python imports ``sitecustomize`` at start-up. With ``CTI_MEMTRACE_DIR`` set, this starts tracemalloc
(``CTI_MEMTRACE_FRAMES`` frames; 0 leaves it off) and a daemon thread that looks for
``<dir>/<name>.request`` once a second and answers with ``<name>.gc.json`` (live objects by type,
after a full collection), ``<name>.malloc.txt`` (the allocators' statistics), ``<name>.arenas.txt`` (the
arena census, arena_census.py) and, when tracing, ``<name>.tracemalloc`` (a snapshot), then ``<name>.done``.
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
            gc.set_debug(gc.DEBUG_SAVEALL)  # what this collection finds unreachable (cycles), by type
            try:
                gc.collect()
                garbage = collections.Counter(type(o).__qualname__ for o in gc.garbage)
                gc.garbage.clear()
            finally:
                gc.set_debug(0)
            (folder / f"{name}.garbage.json").write_text(json.dumps(dict(garbage.most_common(60))))
            counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
            (folder / f"{name}.gc.json").write_text(json.dumps(dict(counts.most_common(400))))
            if tracing:
                tracemalloc.take_snapshot().dump(str(folder / f"{name}.tracemalloc"))
            _mallocstats(folder / f"{name}.malloc.txt")
            _census(folder / f"{name}.arenas.txt", tracing)
            owners = [t for t in os.environ.get("CTI_MEMTRACE_OWNERS", "").split(",") if t]
            if owners:
                (folder / f"{name}.owners.txt").write_text("\n".join(_owners(owners)) + "\n")
            (folder / f"{name}.done").write_text("")


def _owners(kinds: list[str], samples: int = 3, depth: int = 6, breadth: int = 4) -> list[str]:
    """Who holds the live objects of each type in ``kinds`` (``CTI_MEMTRACE_OWNERS=Call,IvrRunner``): for a few
    of each, the chains of referrers by type, ``depth`` levels up, ``breadth`` referrers a level."""
    import gc

    every = gc.get_objects()
    lines: list[str] = []
    for kind in kinds:
        found = [o for o in every if type(o).__qualname__ == kind]
        lines.append(f"{kind}: {len(found)} live")
        for obj in found[-samples:]:
            lines.append(f"  one {kind}:")
            _walk(obj, 1, depth, breadth, {id(every), id(lines), id(found)}, lines)
        del found
    del every
    return lines


def _walk(item: object, level: int, depth: int, breadth: int, seen: set[int], lines: list[str]) -> None:
    """The referrers of ``item`` (by type; a dict's first keys, a frame's function), then theirs."""
    import gc
    import types

    if level >= depth:
        return
    holders = [r for r in gc.get_referrers(item) if id(r) not in seen]
    seen.add(id(holders))
    for holder in holders[:breadth]:
        seen.add(id(holder))
        extra = ""
        if isinstance(holder, dict):
            extra = " keys " + ",".join(str(k)[:24] for k in list(holder)[:6])
        elif isinstance(holder, types.FrameType):
            code = holder.f_code
            extra = f" {code.co_filename.rsplit('/', 2)[-1]}:{holder.f_lineno} {code.co_name}"
        lines.append(f"{'  ' * (level + 1)}<- {type(holder).__qualname__}{extra}")
        _walk(holder, level + 1, depth, breadth, seen, lines)


def _site(obj: object) -> str | None:
    """Where tracemalloc saw ``obj`` allocated: the innermost frame, and the innermost of the project's own
    frames when that is another one; None when it was made before tracing started."""
    import tracemalloc

    trace = tracemalloc.get_object_traceback(obj)
    if trace is None or not len(trace):
        return None
    inner = trace[-1]  # frames run from the oldest to the most recent
    text = f"{inner.filename.rsplit('/', 2)[-2:][-1]}:{inner.lineno}"
    for frame in reversed(trace):
        if "/site-packages/" not in frame.filename and "/lib/python3" not in frame.filename:
            if frame is not inner:
                parts = frame.filename.rsplit("/", 2)
                text += f" < {'/'.join(parts[-2:])}:{frame.lineno}"
            break
    return text


def _census(path: object, tracing: bool) -> None:
    """Which objects keep which of pymalloc's arenas (arena_census.py, beside this file)."""
    try:
        import arena_census

        sparse = int(os.environ.get("CTI_MEMTRACE_SPARSE", "8"))  # arenas with this many used pools or fewer
        lines = arena_census.census(_site if tracing else None, sparse=sparse)
    except Exception as exc:  # a probe must not stop the server; say why it could not count
        lines = [f"arena census failed: {exc!r}"]
    with open(str(path), "w") as out:
        out.write("\n".join(lines) + "\n")


def _malloc_info() -> None:
    """glibc's heap statistics (``malloc_info``, XML) to fd 2; nothing on other C libraries."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.fdopen.restype = ctypes.c_void_p
        libc.fdopen.argtypes = [ctypes.c_int, ctypes.c_char_p]
        stream = libc.fdopen(os.dup(2), b"w")
        libc.malloc_info(0, ctypes.c_void_p(stream))
        libc.fclose(ctypes.c_void_p(stream))
    except (OSError, AttributeError):
        pass


def _mallocstats(path: object) -> None:
    """Python's allocator statistics (``sys._debugmallocstats`` writes to fd 2: pointed at a file meanwhile)."""
    import sys

    with open(str(path), "w") as out:
        out.write(f"# blocks allocated (sys.getallocatedblocks) = {sys.getallocatedblocks()}\n")
        out.flush()
        saved = os.dup(2)
        try:
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
            _malloc_info()
        finally:
            os.dup2(saved, 2)
            os.close(saved)


if _DIR:
    import threading
    import tracemalloc

    _frames = int(os.environ.get("CTI_MEMTRACE_FRAMES", "0") or 0)
    if _frames > 0:
        tracemalloc.start(_frames)
    threading.Thread(target=_serve, args=(_DIR, _frames > 0), name="memtrace", daemon=True).start()
