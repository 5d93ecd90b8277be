"""Which live objects keep which of Python's small-object arenas (CPython 3.11 pymalloc), for the memory probe.

pymalloc carves 1 MiB arenas into 16 KiB pools of one block size each; an arena goes back to the OS only
when every block in it is free. After a burst, RSS stays up when a few surviving blocks are spread over
the burst's arenas. :func:`census` first reads the header of every pool in the process's anonymous
mappings (``struct pool_header``: ``ref.count``, ``freeblock``, ``nextpool``, ``prevpool``, ``arenaindex``,
``szidx``, ``nextoffset``, ``maxnextoffset``) to count the used pools and blocks of each arena; then it
places the objects reachable from the modules and from what gc tracks that lie in the sparse arenas, by
type and (with tracemalloc on) by where each was allocated. Blocks that are no object (a dict's table, a
list's array) are counted but not named. Read-only, and only in a server started by a benchmark with the
probe on (tests/support/memtrace.py).
"""

from __future__ import annotations

import ctypes
import gc
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

POOL_SIZE = 16 * 1024
ALIGNMENT = 16
SMALL_REQUEST_THRESHOLD = 512
ARENA_SIZE = 1024 * 1024
POOL_OVERHEAD = 48  # sizeof(struct pool_header), rounded up to ALIGNMENT
_MASK = ~(POOL_SIZE - 1)


@dataclass
class Arena:
    index: int
    pools: int = 0  # pools carved from the arena so far
    used_pools: int = 0
    blocks: int = 0  # allocated blocks (the pools' own counts)
    bytes_used: int = 0
    named: int = 0  # blocks found to be objects
    objects: Counter[str] = field(default_factory=Counter)
    sites: Counter[str] = field(default_factory=Counter)


def _anonymous_mappings() -> list[tuple[int, int]]:
    """Readable and writable anonymous mappings of this process (where pymalloc's arenas live)."""
    out = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            if fields[1].startswith("rw") and len(fields) == 5:  # a sixth field names a file, [heap], [stack]...
                lo, hi = (int(x, 16) for x in fields[0].split("-"))
                out.append((lo, hi))
    return out


def _header(pool: int) -> tuple[int, int, int] | None:
    """(count, arenaindex, szidx) if the 16 KiB-aligned address ``pool`` holds a pool header."""
    arenaindex, szidx, nextoffset, maxnextoffset = (ctypes.c_uint * 4).from_address(pool + 32)
    if szidx >= SMALL_REQUEST_THRESHOLD // ALIGNMENT:
        return None
    size = (szidx + 1) * ALIGNMENT
    count = ctypes.c_uint.from_address(pool).value
    if maxnextoffset != POOL_SIZE - size or not POOL_OVERHEAD <= nextoffset <= POOL_SIZE or count > POOL_SIZE // size:
        return None
    return count, arenaindex, szidx


def _pools() -> dict[int, tuple[int, int, int]]:
    """Every pool header in the anonymous mappings: address -> (count, arenaindex, szidx). The pools of one
    arena lie within 1 MiB: of an arena index's pools only the largest such cluster is kept (data that
    happens to look like a header, say in the interpreter's own zero-initialised memory, is dropped).
    Other threads are kept from running Python meanwhile (a long switch interval): an arena is unmapped
    only by a thread holding the GIL, so no mapping read here goes away under the scan."""
    found = {}
    interval = sys.getswitchinterval()
    sys.setswitchinterval(30.0)
    try:
        for lo, hi in _anonymous_mappings():
            for pool in range((lo + POOL_SIZE - 1) & _MASK, hi - POOL_OVERHEAD, POOL_SIZE):
                head = _header(pool)
                if head is not None:
                    found[pool] = head
    finally:
        sys.setswitchinterval(interval)
    by_index: dict[int, list[int]] = {}
    for pool, (_, index, _) in sorted(found.items()):
        by_index.setdefault(index, []).append(pool)
    for addresses in by_index.values():
        clusters: list[list[int]] = [[]]
        for pool in addresses:
            if clusters[-1] and pool - clusters[-1][0] >= ARENA_SIZE:
                clusters.append([])
            clusters[-1].append(pool)
        best = max(clusters, key=len)
        for cluster in clusters:
            if cluster is not best:
                for pool in cluster:
                    del found[pool]
    return found


def _block_start(address: int, pool: int, szidx: int) -> bool:
    """``address`` is where an object starts in a block of ``pool``: at the block's start, or 16 or 32 bytes
    in (gc's header; the managed-dict pre-header before it)."""
    size = (szidx + 1) * ALIGNMENT
    return (address - pool - POOL_OVERHEAD) % size in (0, 16, 32) and address - pool >= POOL_OVERHEAD


def census(trace_site: Callable[[object], str | None] | None = None, *, sparse: int = 8, top: int = 12) -> list[str]:
    """A text report: arenas by used pools, and for the sparse ones (``sparse`` used pools or fewer) the
    objects found in them, by type and (``trace_site(obj)``: where it was made, or None) by site."""
    if sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11):
        return ["arena census: written for CPython 3.11's pymalloc only"]
    pools = _pools()
    arenas: dict[int, Arena] = {}
    for count, index, szidx in pools.values():
        arena = arenas.setdefault(index, Arena(index))
        arena.pools += 1
        if count:
            arena.used_pools += 1
            arena.blocks += count
            arena.bytes_used += count * (szidx + 1) * ALIGNMENT
    wanted = {pool for pool, (count, index, _) in pools.items() if count and arenas[index].used_pools <= sparse}
    own = {id(pools), id(wanted), id(arenas), *map(id, pools.values()), *map(id, arenas.values()),
           *(id(c) for a in arenas.values() for c in (a.objects, a.sites))}  # the census's own objects
    # Everything reachable from the modules and from what gc tracks: gc.get_objects() leaves out what
    # gc.freeze() moved to the permanent generation (start-up objects, and whatever they were given since).
    visited: set[int] = set(own)
    todo: list[Any] = [*gc.get_objects(), *sys.modules.values()]
    visited.update((id(visited), id(todo), id(sys._getframe())))
    while todo:
        item = todo.pop()
        address = id(item)
        if address in visited:
            continue
        visited.add(address)
        if gc.is_tracked(item):
            todo.extend(gc.get_referents(item))
        pool = address & _MASK
        if pool in wanted and _block_start(address, pool, pools[pool][2]):
            try:
                if sys.getsizeof(item) > SMALL_REQUEST_THRESHOLD:
                    continue
            except Exception:  # an object whose __sizeof__ fails: skip it
                continue
            arena = arenas[pools[pool][1]]
            kind = type(item).__qualname__
            arena.named += 1
            arena.objects[kind] += 1
            site = trace_site(item) if trace_site is not None else None
            if site is not None:
                arena.sites[f"{kind} {site}"] += 1
    del visited, todo
    ordered = sorted(arenas.values(), key=lambda a: (a.used_pools, a.index))
    histogram = Counter(min(a.used_pools // 8 * 8, 64) for a in ordered)
    few = [a for a in ordered if a.used_pools <= sparse]
    lines = [f"arenas {len(ordered)} ({sum(1 for a in ordered if not a.used_pools)} with no used pool); "
             f"by used pools: " + ", ".join(f"{k}-{k + 7}: {v}" for k, v in sorted(histogram.items())),
             f"arenas with <= {sparse} used pools: {len(few)}, holding {sum(a.blocks for a in few)} blocks "
             f"({sum(a.bytes_used for a in few) / 1024:.0f} KiB), {sum(a.named for a in few)} of them named"]
    kinds: Counter[str] = Counter()
    sites: Counter[str] = Counter()
    for arena in few:
        kinds.update(arena.objects)
        sites.update(arena.sites)
        lines.append(f"  arena {arena.index}: {arena.used_pools}/{arena.pools} pools used, {arena.blocks} blocks "
                     f"({arena.bytes_used} B, {arena.named} named): "
                     + ", ".join(f"{k} {n}" for k, n in arena.objects.most_common(6)))
    lines.append("objects in those arenas by type: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common(top)))
    if sites:
        lines.append("... by where they were made:")
        lines += [f"  {n:>6} {site}" for site, n in sites.most_common(top * 3)]
    return lines
