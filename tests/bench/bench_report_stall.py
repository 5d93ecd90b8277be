"""How long a large KPI report makes the event loop wait (a script, not collected by pytest).

    python tests/bench/bench_report_stall.py [--legs 50000] [--days 93] [--range-days N] [--agents 20] [--kind queues]
                                             [--interval 30m] [--format json] [--db FILE] [--repeat 1]

Builds (or reuses, with ``--db``) an SQLite store holding ``--legs`` queue legs spread over ``--days`` days in
three queues, with the agent-state rows those calls leave (ringing, on call, wrap-up, available) and one CDR
per call (a share of them IVR-only), then serves ``GET /api/v1/reports/{kind}`` over the whole range from an
aiohttp server in this process and asks it with ``curl`` (another process, so the client's parsing is not
on the measured loop). A ticker task sleeps 1 ms at a time on the loop and records how late each wake-up is:
the worst lateness is how long a SIP message or an RTP packet would have waited.

It prints, in the same run: the worst and 99th-percentile lateness of an idle loop, of a loop beside a
pure-Python thread (what any worker thread costs through the GIL), and of the loop while the report runs,
with the report's time and size; then of the idle loop again for as long as the report took (on a shared
host, a long window catches the host's own rare stalls, which are not the report's).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import inspect
import logging
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from config.schema import ServerConfig  # noqa: E402
from cti.reports.routes import add_report_routes  # noqa: E402
from cti.store import open_store  # noqa: E402
from cti.store.rows import CALL_COLUMNS, LEG_COLUMNS  # noqa: E402

QUEUES = ("sales", "support", "billing")
START = dt.datetime(2026, 6, 1, tzinfo=dt.UTC).timestamp()


def _fill(path: Path, args: argparse.Namespace) -> None:
    """Legs, states and CDRs straight into the file (the store made the schema)."""
    rng = random.Random(7)
    per_day = args.legs / args.days
    legs: list[tuple[object, ...]] = []
    calls: list[tuple[object, ...]] = []
    states: list[tuple[object, ...]] = []
    free_at = {f"a{i}": START for i in range(args.agents)}
    leg_marks = ", ".join("?" for _ in LEG_COLUMNS)
    call_marks = ", ".join("?" for _ in CALL_COLUMNS)
    for n in range(args.legs):
        day = int(n / per_day)
        at = START + day * 86400 + 8 * 3600 + rng.random() * 12 * 3600
        call, queue = f"c{n}", QUEUES[n % 3]
        caller = f"+86138{rng.randrange(10**6):06d}"
        roll = rng.random()
        leg: dict[str, object] = dict.fromkeys(LEG_COLUMNS)
        leg.update(leg_id=f"{call}-1", call_id=call, queue_id=queue, skills="[]", priority=0, vip_flag=False,
                   caller_number=caller, t_enter_queue=at, talk_s=0.0, hold_s=0.0, acw_s=0.0, offers=0)
        record: dict[str, object] = dict.fromkeys(CALL_COLUMNS)
        record.update(call_id=call, node="bench", caller_number=caller, dialled_number="100", t_arrived=at - 15,
                      t_ivr_answered=at - 14, t_ivr_left=at, t_queued=at, ivr_inputs="{}", crm_data="{}", vip=False,
                      final_queue=queue)
        if roll < 0.8:
            wait = rng.expovariate(1 / 15)
            agent = f"a{rng.randrange(args.agents)}"
            answer = max(at + wait, free_at[agent] + 1)
            talk, acw = rng.uniform(60, 400), rng.uniform(5, 60)
            leg.update(outcome="answered", t_answer=answer, t_end=answer + talk, agent_id=agent, talk_s=talk,
                       acw_s=acw, offers=1)
            record.update(t_answered=answer, t_ended=answer + talk, hangup_by="caller", final_agent=agent)
            ring = answer - min(rng.uniform(2, 12), answer - free_at[agent])
            for state, t0, t1 in (("ringing", ring, answer), ("on_call", answer, answer + talk),
                                  ("wrap_up", answer + talk, answer + talk + acw)):
                states.append((agent, state, None, t0, t1))
            states.append((agent, "available", None, answer + talk + acw, None))  # closed by the next row
            free_at[agent] = answer + talk + acw
        elif roll < 0.95:
            wait = rng.expovariate(1 / 40)
            leg.update(outcome="abandoned", t_abandon=at + wait)
            record.update(t_ended=at + wait, hangup_by="caller")
        else:
            leg.update(outcome="flowout", t_flowout=at + 120, flowout_reason="max_wait")
            record.update(t_ended=at + 120, hangup_by="system")
        legs.append(tuple(leg[c] for c in LEG_COLUMNS))
        calls.append(tuple(record[c] for c in CALL_COLUMNS))
        if rng.random() < 0.1:  # a caller who hangs up in the IVR
            ivr: dict[str, object] = dict.fromkeys(CALL_COLUMNS)
            ivr.update(call_id=f"i{n}", node="bench", caller_number=caller, dialled_number="100", t_arrived=at,
                       t_ivr_answered=at + 1, t_ivr_left=at + 9, t_ended=at + 9, hangup_by="caller",
                       ivr_inputs="{}", crm_data="{}", vip=False)
            calls.append(tuple(ivr[c] for c in CALL_COLUMNS))
    states.sort(key=lambda s: (s[0], s[3]))
    closed = []
    for i, (agent, state, reason, t0, t1) in enumerate(states):
        if t1 is None:
            nxt = states[i + 1] if i + 1 < len(states) and states[i + 1][0] == agent else None
            t1 = None if nxt is None else max(t0, nxt[3])
        closed.append((agent, state, reason, t0, t1))
    with sqlite3.connect(path) as db:
        db.executemany(f"INSERT INTO queue_legs ({', '.join(LEG_COLUMNS)}) VALUES ({leg_marks})", legs)
        db.executemany(f"INSERT INTO calls ({', '.join(CALL_COLUMNS)}) VALUES ({call_marks})", calls)
        db.executemany("INSERT INTO agent_state_history (agent_id, state, reason, start_ts, end_ts) "
                       "VALUES (?, ?, ?, ?, ?)", closed)


async def _ticker(stop: asyncio.Event, lags: list[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.001)
        lags.append(loop.time() - before - 0.001)


def _figures(lags: list[float]) -> str:
    ordered = sorted(lags)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0
    return f"worst {1000 * max(lags, default=0):.1f} ms, p99 {1000 * p99:.1f} ms, {len(lags)} ticks"


async def _measure(seconds: float, busy: bool = False) -> str:
    stop, lags, halt = asyncio.Event(), [], threading.Event()

    def spin() -> None:
        x = 0
        while not halt.is_set():
            x += 1

    thread = threading.Thread(target=spin) if busy else None
    if thread is not None:
        thread.start()
    async with asyncio.TaskGroup() as group:
        group.create_task(_ticker(stop, lags), name="bench-ticker")
        await asyncio.sleep(seconds)
        stop.set()
    halt.set()
    if thread is not None:
        thread.join()
    return _figures(lags)


async def _report(store_path: Path, args: argparse.Namespace, out: Path) -> tuple[str, float, int, str]:
    store = await open_store(store_path)
    days = args.range_days or args.days
    config = ServerConfig.model_validate({"queues": [{"name": q} for q in QUEUES],
                                          "reports": {"max_range_days": max(days, 1)}})
    app = web.Application()
    where: dict[str, Any] = {"store_target": str(store_path)}
    if "store_target" not in inspect.signature(add_report_routes).parameters:  # the code before report workers
        where = {"store": store}
    add_report_routes(app, config=config, clock=lambda: START + (days + 1) * 86400, **where)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    first = dt.datetime.fromtimestamp(START, dt.UTC).date()
    last = first + dt.timedelta(days=days - 1)
    url = (f"http://127.0.0.1:{port}/api/v1/reports/{args.kind}?from={first}&to={last}"
           f"&interval={args.interval}&format={args.format}")
    stop, lags = asyncio.Event(), []
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(_ticker(stop, lags), name="bench-ticker")
            await asyncio.sleep(0.2)
            t0 = time.perf_counter()
            curl = await asyncio.create_subprocess_exec("curl", "-s", "-o", str(out), "-w", "%{http_code}", url,
                                                        stdout=asyncio.subprocess.PIPE)
            status, _ = await curl.communicate()
            elapsed = time.perf_counter() - t0
            await asyncio.sleep(0.2)
            stop.set()
    finally:
        await runner.cleanup()
        await store.close()
    return _figures(lags), elapsed, await asyncio.to_thread(lambda: out.stat().st_size), status.decode()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--legs", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=93)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--range-days", type=int, help="days the report covers (default --days)")
    parser.add_argument("--kind", choices=("queues", "agents", "ivr"), default="queues")
    parser.add_argument("--interval", default="30m")
    parser.add_argument("--format", choices=("json", "csv", "svg"), default="json")
    parser.add_argument("--db", type=Path, help="keep the data in this file (made when missing) for later runs")
    parser.add_argument("--repeat", type=int, default=1, help="ask the report this many times")
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    folder = Path(tempfile.mkdtemp(prefix="bench-report-"))
    try:
        path = args.db or folder / "cti.sqlite3"
        if not path.exists():
            t0 = time.perf_counter()
            await (await open_store(path)).close()
            _fill(path, args)
            print(f"data: {args.legs} legs over {args.days} days, {args.agents} agents "
                  f"({time.perf_counter() - t0:.1f} s to write {path})")
        print(f"idle loop, 3 s:                   {await _measure(3.0)}")
        print(f"beside a pure-Python thread, 3 s: {await _measure(3.0, busy=True)}")
        for _ in range(args.repeat):
            lag, elapsed, size, status = await _report(path, args, folder / "report.out")
            print(f"{args.kind} report, {args.range_days or args.days} days, {args.interval}, {args.format}: "
                  f"HTTP {status}, {elapsed:.2f} s, {size / 1e6:.1f} MB; loop: {lag}")
            print(f"  then the idle loop as long ({elapsed:.0f} s): {await _measure(elapsed)}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
