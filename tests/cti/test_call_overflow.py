"""The call shell and the ACD's ExitCall: an overflow exit runs its IVR flow; other exits, and a flow gone
since start-up, end the call as the flow-out they are."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any, cast

from acd import CallId, ExitCall, ExitReason, QueueId
from cti.call import LegPhase, Role
from cti.call.detail import CallDetail, CallPhase
from cti.call.legs import LegState
from cti.call.shell import Call
from cti.clock import NodeClock
from ivr import FlowCatalog
from tests.cti.call.fakes import make_ports, settings


class Leg:
    """The caller's trunk leg, as the call sees it (answered by the IVR)."""

    state = LegState.ESTABLISHED

    def __init__(self) -> None:
        self.rejected: list[int] = []
        self.byes = 0

    def bye(self) -> None:
        self.byes += 1

    def reject(self, status: int) -> None:
        self.rejected.append(status)


class Records:
    def milestone(self, call_id: str, detail: CallDetail) -> None:
        pass


class Controller:
    def __init__(self, flows: FlowCatalog) -> None:
        self.flows = flows
        self.records = Records()
        self.clock = NodeClock(monotonic=lambda: 100.0, wall=lambda: 1_700_000_000.0)

    def http(self) -> None:
        return None


def _catalog(tmp: Path) -> FlowCatalog:
    flows, prompts = tmp / "flows", tmp / "prompts"
    flows.mkdir()
    prompts.mkdir()
    (flows / "f.yaml").write_text(textwrap.dedent("""\
        flows:
          closed:
            start: mark
            nodes:
              mark: {type: set, values: {after_hours: true}, next: bye}
              bye: {type: hangup}
        """))
    catalog = FlowCatalog(flows, prompts)
    catalog.load()
    return catalog


def _queued_call(controller: Controller) -> tuple[Call, Leg]:
    detail = CallDetail(call_id="c-1", sip_call_id="x@y", trunk="carrier", caller="5551234", caller_name="",
                        dialled="100", arrived_at=0.0)
    detail.queue = "sales"
    detail.ivr_inputs = [{"node": "menu", "digits": "1", "result": "accepted", "at": 1.0}]
    ports = make_ports(settings=settings(flows=controller.flows), records=controller.records,
                       clock=controller.clock, http=controller.http)
    call = Call(ports, "c-1", detail, cast(Any, object()))
    leg = Leg()
    call.trunk = cast(Any, leg)
    call.core.legs[Role.CALLER] = LegPhase.ESTABLISHED  # answered by the IVR
    call.core.phase = CallPhase.QUEUED  # as the IVR's enqueue leaves it
    return call, leg


def _exit(reason: ExitReason, target: str | None = None) -> ExitCall:
    return ExitCall(call_id=CallId("c-1"), queue_id=QueueId("sales"), reason=reason, target=target)


async def test_an_overflow_exit_runs_the_flow_which_ends_the_call_its_own_way(tmp_path: Path) -> None:
    call, leg = _queued_call(Controller(_catalog(tmp_path)))
    async with asyncio.timeout(5), asyncio.TaskGroup() as tg:
        call._tg = tg  # the call's own task group, as Call.run sets it
        call.on_acd_command(_exit(ExitReason.OVERFLOW_EXIT, "closed"))
        assert call.phase is CallPhase.IVR and call.runner is not None
    assert call.phase is CallPhase.ENDED
    assert (call.detail.end_reason, leg.byes) == ("ivr-hangup", 1)  # the flow's hang-up, not the overflow's
    assert call.detail.ivr_variables["after_hours"] is True
    assert [i["node"] for i in call.detail.ivr_inputs] == ["menu"]  # the first flow's inputs are kept


def test_a_flow_gone_since_start_up_ends_the_call_as_the_flow_out(tmp_path: Path) -> None:
    call, leg = _queued_call(Controller(_catalog(tmp_path)))
    call._tg = cast(Any, object())  # running (never used: the flow is missing)
    call.on_acd_command(_exit(ExitReason.OVERFLOW_EXIT, "reloaded_away"))
    assert call.phase is CallPhase.ENDED and call.detail.end_reason == "flowout:overflow_exit"
    assert leg.byes == 1


def test_other_exits_end_the_call_as_before(tmp_path: Path) -> None:
    call, leg = _queued_call(Controller(_catalog(tmp_path)))
    call.on_acd_command(_exit(ExitReason.MAX_WAIT, "closed"))  # only overflow exits go on in a flow
    assert call.phase is CallPhase.ENDED and call.detail.end_reason == "flowout:max_wait"
