"""Reports run in worker processes, so a long report never holds the server's event loop (docs/reports.md).

A report of a quarter reads and decodes hundreds of thousands of rows, computes tens of thousands of
figure rows and serialises megabytes. In a thread of the server that work still holds the GIL: the event
loop (SIP, RTP, WebSocket) then waits for it in slices of the interpreter's switch interval, and a single
``json.dumps`` of the result holds it for a second. A worker process shares nothing with the loop.

- :class:`ReportWorkers` (server side, asyncio): up to ``size`` long-lived ``python -m cti.reports.worker``
  children, started on first use and reused; a job is written to a child's stdin and its answer read back
  from its stdout without blocking the loop. A job that overruns its time limit, is cancelled, or whose child
  fails has its child killed (a new one starts for the next job).
- :func:`main` (child side, at a lower CPU priority than the server: ``nice`` 10): reads jobs, opens the
  store named in the job (an SQLite path or a PostgreSQL URL; opened once and kept), reads the rows,
  computes and serialises, and answers with the HTTP status, content type and body the route sends as they
  are.

Frames: a job is an 8-byte big-endian length and a pickled :class:`ReportJob` (the server's own code on both
ends); an answer is an 8-byte length and a JSON header ``{"status", "content_type"}``, then an 8-byte length
and the body. Nothing but frames is written to the child's stdout (its ``print``/log output goes to stderr).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import shutil
import sys
from typing import IO

import structlog

from cti.reports.errors import ReportError, ReportInputError
from cti.reports.jobs import JOBS
from cti.reports.work import ReportJob, ReportOutput
from cti.store import Store, open_store

__all__ = ["ReportWorkers", "main"]

log = structlog.get_logger("cti.reports")

NICENESS = 10  # the workers' scheduling priority below the server's (Unix nice)


# ---------------------------------------------------------------------------------------------- server side
class _Child:
    """One worker process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> _Child:
        nice = shutil.which("nice")  # lowered from the start: its imports too yield the CPU to the server
        lowered = [nice, "-n", str(NICENESS)] if nice is not None else []
        process = await asyncio.create_subprocess_exec(
            *lowered, sys.executable, "-m", "cti.reports.worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        return cls(process)

    async def ask(self, job: ReportJob) -> ReportOutput:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        data = pickle.dumps(job)
        stdin.write(len(data).to_bytes(8, "big") + data)
        await stdin.drain()
        header = json.loads(await stdout.readexactly(int.from_bytes(await stdout.readexactly(8), "big")))
        body = await stdout.readexactly(int.from_bytes(await stdout.readexactly(8), "big"))
        return ReportOutput(int(header["status"]), str(header["content_type"]), body)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()

    async def stop(self, timeout_s: float = 5.0) -> None:
        """End the child: close its stdin (it exits after the job at hand), kill it if it does not."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            async with asyncio.timeout(timeout_s):
                await self.process.wait()
        except TimeoutError:
            self.kill()
            await self.process.wait()


class ReportWorkers:
    """At most ``size`` worker processes; jobs beyond that wait for a free one."""

    def __init__(self, size: int = 2) -> None:
        self._slots = asyncio.Semaphore(size)
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()

    async def run(self, job: ReportJob, timeout_s: float) -> ReportOutput:
        """The job's answer.

        Raises:
            TimeoutError: no answer within ``timeout_s`` (waiting for a free worker included); its child is
                killed. ReportError: the child died or answered garbage.
        """
        async with asyncio.timeout(timeout_s), self._slots:
            child = self._take_idle() or await _Child.start()
            self._busy.add(child)
            try:
                out = await child.ask(job)
            except (asyncio.IncompleteReadError, ConnectionError, ValueError, KeyError) as exc:
                child.kill()
                log.error("reports.worker.failed", error=repr(exc), kind=job.kind)
                raise ReportError(f"the report worker failed: {exc!r}") from exc
            except BaseException:  # timeout or cancelled: the child may be mid-job, so it goes
                child.kill()
                raise
            finally:
                self._busy.discard(child)
            self._idle.append(child)
            return out

    def _take_idle(self) -> _Child | None:
        """A waiting worker that is still alive (one that died while idle is dropped)."""
        while self._idle:
            child = self._idle.pop()
            if child.process.returncode is None:
                return child
        return None

    async def close(self) -> None:
        """Stop every worker (idle ones politely, busy ones by kill)."""
        for child in self._busy:
            child.kill()
        idle, self._idle = self._idle, []
        for child in idle:
            await child.stop()


# ---------------------------------------------------------------------------------------------- child side
async def _answer(job: ReportJob, stores: dict[str, Store]) -> ReportOutput:
    compute = JOBS.get(job.kind)
    if compute is None:
        return ReportOutput.error(400, ReportInputError.code, f"unknown report kind {job.kind!r}", "kind")
    store = stores.get(job.target)
    if store is None:
        store = stores[job.target] = await open_store(job.target, pool_size=2)
    try:
        return await compute(store, job)
    except ReportInputError as exc:
        return ReportOutput.error(400, exc.code, str(exc), exc.field)


def _write(out: IO[bytes], answer: ReportOutput) -> None:
    header = json.dumps({"status": answer.status, "content_type": answer.content_type}).encode()
    out.write(len(header).to_bytes(8, "big") + header + len(answer.body).to_bytes(8, "big"))
    out.write(answer.body)
    out.flush()


def main() -> None:
    """The worker process: answer jobs from stdin until it closes."""
    import logging

    with contextlib.suppress(OSError):
        if os.nice(0) < NICENESS:  # started without ``nice``: a report waits, the server's calls do not
            os.nice(NICENESS - os.nice(0))
    frames = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray output (prints, logs) goes to stderr, never into the frames
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    jobs = sys.stdin.buffer
    stores: dict[str, Store] = {}
    with asyncio.Runner() as runner:
        try:
            while len(size := jobs.read(8)) == 8:
                job = pickle.loads(jobs.read(int.from_bytes(size, "big")))
                try:
                    answer = runner.run(_answer(job, stores))
                except Exception as exc:  # noqa: BLE001 - one failed report must not end the worker
                    log.error("reports.job.failed", kind=getattr(job, "kind", None), error=repr(exc))
                    answer = ReportOutput.error(500, "reports.failed", f"the report failed: {exc!r}")
                _write(frames, answer)
        finally:
            for store in stores.values():
                runner.run(store.close())


if __name__ == "__main__":
    main()
