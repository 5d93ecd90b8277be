"""What a benchmark's server holds in memory: RSS from /proc, and an opt-in probe inside the process.

``CTI_SOAK_TRACEMALLOC=N`` (frames, e.g. 1 or 5) or ``CTI_SOAK_GC=1`` in the benchmark's
environment: :func:`prepare` puts ``tests/support/memtrace_site`` on the server's PYTHONPATH (its
``sitecustomize`` starts tracemalloc and a probe thread, see there); :func:`snapshot` asks the
probe for live objects by type (and a tracemalloc snapshot) and waits for it; :func:`report` prints
what grew between two snapshots, and the arena census of the second (``memtrace_site/arena_census.py``:
which objects keep which of pymalloc's arenas; ``CTI_MEMTRACE_SPARSE=N`` lists the arenas with up to N
used pools, 8 by default; ``CTI_MEMTRACE_OWNERS=Call,IvrRunner`` adds, for a few live objects of each type named,
the chains of referrers that hold them). Without either variable every function here does nothing.
"""

from __future__ import annotations

import json
import os
import time
import tracemalloc
from pathlib import Path

SITE = Path(__file__).resolve().parent / "memtrace_site"


def rss_mb(pid: int) -> float:
    """Resident set size (VmRSS) of a process in MB; NaN once it is gone."""
    try:
        for text in Path(f"/proc/{pid}/status").read_text().splitlines():
            if text.startswith("VmRSS:"):
                return int(text.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def breakdown(pid: int) -> dict[str, float]:
    """Resident MB of a process by kind of mapping (/proc/PID/smaps): ``heap`` (the C heap, brk),
    ``anon`` (anonymous mappings: Python's arenas, large blocks, thread heaps), ``file`` (code, libraries)
    and ``other`` (stack, vdso); empty once the process is gone."""
    out = {"heap": 0.0, "anon": 0.0, "file": 0.0, "other": 0.0}
    kind = "other"
    try:
        lines = Path(f"/proc/{pid}/smaps").read_text().splitlines()
    except OSError:
        return {}
    for text in lines:
        fields = text.split()
        if not fields:
            continue
        if fields[0] == "Rss:":
            out[kind] += int(fields[1]) / 1024
        elif not fields[0].endswith(":") and "-" in fields[0]:
            name = fields[5] if len(fields) > 5 else ""
            kind = "heap" if name == "[heap]" else "other" if name.startswith("[") else "file" if name else "anon"
    return out


def prepare(workdir: Path) -> Path | None:
    """Set the environment a server started next inherits; the probe's directory, or None when off.

    Raises:
        ValueError: ``CTI_SOAK_TRACEMALLOC`` is not a whole number of frames.
    """
    frames_text = os.environ.get("CTI_SOAK_TRACEMALLOC", "")
    if not frames_text and not os.environ.get("CTI_SOAK_GC"):
        return None
    if frames_text and not frames_text.isdigit():
        raise ValueError(f"CTI_SOAK_TRACEMALLOC must be a number of frames, not {frames_text!r}")
    folder = workdir / "memtrace"
    folder.mkdir(parents=True, exist_ok=True)
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{SITE}{os.pathsep}{path}" if path else str(SITE)
    os.environ["CTI_MEMTRACE_DIR"] = str(folder)
    os.environ["CTI_MEMTRACE_FRAMES"] = frames_text or "0"
    return folder


def snapshot(pid: int, folder: Path | None, name: str, timeout: float = 120.0) -> bool:
    """Ask the probe in ``pid`` for snapshot ``name`` and wait for it (False: no probe or no answer)."""
    if folder is None:
        return False
    (folder / f"{name}.request").write_text(str(pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (folder / f"{name}.done").exists():
            return True
        time.sleep(0.5)
    return False


def report(folder: Path | None, first: str, second: str, top: int = 15) -> None:
    """Print the object types and (with tracemalloc) the source lines that grew from ``first`` to ``second``."""
    if folder is None:
        return
    gc_a, gc_b = folder / f"{first}.gc.json", folder / f"{second}.gc.json"
    if gc_a.exists() and gc_b.exists():
        before, after = json.loads(gc_a.read_text()), json.loads(gc_b.read_text())
        grown = sorted(((after.get(k, 0) - before.get(k, 0), k) for k in set(before) | set(after)), reverse=True)
        print(f"live objects tracked by gc: {sum(before.values())} at {first}, {sum(after.values())} at {second}; "
              f"types that grew most:")
        for delta, kind in grown[:top]:
            print(f"  {delta:>+9} {kind} ({before.get(kind, 0)} -> {after.get(kind, 0)})")
    for name in (first, second):
        stats = folder / f"{name}.malloc.txt"
        if stats.exists():
            wanted = ("# blocks allocated", "# arenas allocated current", "unused pools *", "Total  ")
            lines = [t for t in stats.read_text().splitlines() if t.startswith(wanted)]
            print(f"Python's allocator at {name}: " + "; ".join(" ".join(t.split()) for t in lines[:4]))
    owners = folder / f"{second}.owners.txt"
    if owners.exists():
        print(f"who holds them at {second} (CTI_MEMTRACE_OWNERS):")
        print(owners.read_text())
    census = folder / f"{second}.arenas.txt"
    if census.exists():
        print(f"pymalloc arenas at {second} (tests/support/memtrace_site/arena_census.py):")
        for text in census.read_text().splitlines()[:120]:
            print(f"  {text}")
    snap_a, snap_b = folder / f"{first}.tracemalloc", folder / f"{second}.tracemalloc"
    if snap_a.exists() and snap_b.exists():
        a = tracemalloc.Snapshot.load(str(snap_a))
        b = tracemalloc.Snapshot.load(str(snap_b))
        total_a = sum(s.size for s in a.statistics("filename"))
        total_b = sum(s.size for s in b.statistics("filename"))
        print(f"traced Python memory: {total_a / 2**20:.1f} MB at {first}, {total_b / 2**20:.1f} MB at {second}; "
              f"lines that grew most:")
        for stat in b.compare_to(a, "lineno")[:top]:
            frame = stat.traceback[0]
            print(f"  {stat.size_diff / 1024:>+9.1f} KiB {stat.count_diff:>+8} blocks  {frame.filename}:{frame.lineno}")
