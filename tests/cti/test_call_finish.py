"""A call that fails to close its media still finishes: CDR, live-call count and admission."""

from __future__ import annotations

from typing import Any, cast

from cti.call.detail import CallDetail
from cti.call.shell import Call
from tests.cti.call.fakes import make_ports


class BrokenMedia:
    async def close(self) -> None:
        raise OSError("disk full while closing the recording")


class Controller:
    def __init__(self) -> None:
        self.finished: list[Call] = []

    async def call_finished(self, call: Call) -> None:
        self.finished.append(call)


async def test_a_media_close_failure_still_finishes_the_call() -> None:
    controller = Controller()
    detail = CallDetail(call_id="c-1", sip_call_id="x@y", trunk="carrier", caller="5551234", caller_name="",
                        dialled="100", arrived_at=0.0)
    call = Call(make_ports(owner=controller), "c-1", detail, cast(Any, BrokenMedia()))
    await call._finish()
    assert controller.finished == [call]
