"""Hot reload of flows: the current :class:`~ivr.flow.FlowSet`, swapped atomically.

A reload loads the whole folder again in a worker thread (file reads stay off the event
loop), validates it, and only then replaces the current set with a higher ``version``.
A bad reload leaves the current set in place. Sessions hold a reference to the set they
started on, so calls in progress finish on their version and no call is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from pathlib import Path

import structlog

from config.errors import ConfigFileError
from ivr.engine import Session
from ivr.errors import LocalIvrError
from ivr.flow import FlowSet
from ivr.loader import load_flow_dir

log = structlog.get_logger("ivr")


class FlowCatalog:
    """The flows a node serves now; new calls start on :attr:`current`."""

    def __init__(
        self,
        flows_dir: str | Path,
        prompt_dir: str | Path,
        *,
        extra_lists: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        self.flows_dir = Path(flows_dir)
        self.prompt_dir = Path(prompt_dir)
        self.extra_lists = {name: tuple(numbers) for name, numbers in (extra_lists or {}).items()}
        self._current: FlowSet | None = None

    @property
    def current(self) -> FlowSet:
        """The newest valid flow set.

        Raises:
            LocalIvrError: nothing was loaded yet.
        """
        if self._current is None:
            raise LocalIvrError("flow catalog used before load()")
        return self._current

    def _load(self, version: int) -> FlowSet:
        return load_flow_dir(self.flows_dir, self.prompt_dir, version=version, extra_lists=self.extra_lists)

    def load(self) -> FlowSet:
        """First load, blocking (before the event loop serves calls).

        Raises:
            ConfigFileError: the flows are invalid (``file:line: reason`` for each problem).
        """
        self._current = self._load(1)
        log.info("ivr.flows.loaded", version=1, flows=sorted(self._current.flows))
        return self._current

    async def reload(self) -> FlowSet:
        """Load the folder again in a thread and swap it in if valid.

        Raises:
            ConfigFileError: the new flows are invalid; the current set stays in service.
        """
        version = (self._current.version if self._current else 0) + 1
        try:
            flow_set = await asyncio.to_thread(self._load, version)
        except ConfigFileError as exc:
            log.warning("ivr.flows.reload_failed", problems=[str(p) for p in exc.problems])
            raise
        self._current = flow_set
        log.info("ivr.flows.reloaded", version=version, flows=sorted(flow_set.flows))
        return flow_set

    def new_session(self, flow: str, *, caller: str, called: str = "") -> Session:
        """A session on the current flow set.

        Raises:
            LocalIvrError: nothing loaded yet. UnknownFlowError: no such flow.
        """
        return Session(self.current, flow, caller=caller, called=called)
