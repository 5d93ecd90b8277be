"""Shared helpers for the ACD core tests: a hand-stepped clock around one Router."""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any, TypeVar

import pytest
import structlog

from acd import (
    AcdOutput,
    AcdRequest,
    AgentConfig,
    AgentId,
    CallId,
    Enqueue,
    LoginAgent,
    OfferCall,
    QueueConfig,
    QueueId,
    Router,
    SiteCalendar,
    SkillName,
    SkillRequirement,
)

T = TypeVar("T")


def sid(name: str) -> SkillName:
    return SkillName(name)


def req(skill: str, level: int = 1) -> SkillRequirement:
    return SkillRequirement(skill=SkillName(skill), min_level=level)


def agent_cfg(agent_id: str, queues: Iterable[str], **skills: int) -> AgentConfig:
    return AgentConfig(id=AgentId(agent_id), skills={SkillName(k): v for k, v in skills.items()},
                       queues=frozenset(QueueId(q) for q in queues))


class Desk:
    """One router plus a clock stepped by hand, and the outputs of the last step."""

    def __init__(self, *queues: QueueConfig, seed: int = 1, calendar: SiteCalendar | None = None) -> None:
        self.router = Router(queues, rng=random.Random(seed), calendar=calendar)
        self.now = 0.0
        self.out: list[AcdOutput] = []
        self.log: list[AcdOutput] = []

    def do(self, request: AcdRequest) -> list[AcdOutput]:
        self.out = self.router.handle(request, self.now)
        self.log += self.out
        return self.out

    def advance(self, seconds: float) -> list[AcdOutput]:
        """Step time, firing every timer due on the way (each at its own deadline)."""
        target = self.now + seconds
        fired: list[AcdOutput] = []
        while (deadline := self.router.get_timer()) is not None and deadline <= target:
            self.now = max(self.now, deadline)
            fired += self.router.handle_timer(self.now)
        self.now = target
        fired += self.router.handle_timer(self.now)
        self.out = fired
        self.log += fired
        return fired

    def login(self, agent_id: str, queues: Iterable[str], ready: bool = True, **skills: int) -> None:
        self.do(LoginAgent(agent=agent_cfg(agent_id, queues, **skills), ready=ready))

    def enqueue(self, call_id: str, queue: str, priority: int = 0, *skills: SkillRequirement) -> list[AcdOutput]:
        return self.do(Enqueue(call_id=CallId(call_id), queue_id=QueueId(queue), priority=priority,
                               skills=tuple(skills)))

    def offer(self) -> OfferCall:
        """The single OfferCall of the last step."""
        offers = of(self.out, OfferCall)
        assert len(offers) == 1, self.out
        return offers[0]


def of(outputs: Iterable[AcdOutput], kind: type[T]) -> list[T]:
    return [o for o in outputs if isinstance(o, kind)]


def queue(name: str = "sales", *skills: SkillRequirement, **kwargs: object) -> QueueConfig:
    return QueueConfig(id=QueueId(name), skills=tuple(skills), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def desk() -> Desk:
    return Desk(queue("sales", req("sales")), queue("support", req("support")))


@pytest.fixture(autouse=True)
def _quiet_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Keep ACD debug logs out of the test output (and let tests inspect them)."""
    with structlog.testing.capture_logs() as logs:
        yield logs
