"""Supervision commands over the real WebSocket gateway: who may monitor, whisper, barge, take over.

An agent token and a supervisor of another team/queue are refused every supervision command (the
connection stays usable and the node is never asked); the supervisor of the call's queue is obeyed.
"""

from __future__ import annotations

from typing import Any

import pytest

from cti.gateway.commands import SUPERVISION_COMMANDS
from cti.tokens import Role
from tests.cti.test_gateway_ws import Server, server  # noqa: F401 - the fixture is used by name

COMMANDS = sorted(SUPERVISION_COMMANDS)


def _supervision_actions(server: Server) -> list[tuple[Any, ...]]:  # noqa: F811
    return [a for a in server.control.actions if a[0] in ("supervise", "end_supervision", "take_over")]


@pytest.fixture(autouse=True)
def supervisable(server: Server) -> None:  # noqa: F811
    """Give the fake node the supervision methods; record every call."""
    control = server.control

    def supervise(supervisor_id: str, call_id: str, mode: str) -> None:
        control.actions.append(("supervise", supervisor_id, call_id, mode))

    def end_supervision(supervisor_id: str, call_id: str) -> None:
        control.actions.append(("end_supervision", supervisor_id, call_id))

    def take_over(supervisor_id: str, call_id: str) -> None:
        control.actions.append(("take_over", supervisor_id, call_id))

    control.supervise = supervise  # type: ignore[attr-defined]
    control.end_supervision = end_supervision  # type: ignore[attr-defined]
    control.take_over = take_over  # type: ignore[attr-defined]
    control.put_call("c3", "a3", "support")


@pytest.mark.parametrize("command", COMMANDS)
async def test_an_agent_is_refused_every_supervision_command(server: Server, command: str) -> None:  # noqa: F811
    client = await server.connect(Role.AGENT, "a3")
    await client.recv()
    reply = await client.command(command, call_id="c3")
    assert reply["ok"] is False and reply["error"]["code"] == "forbidden", reply
    assert not _supervision_actions(server)
    assert (await client.command("not_ready", reason="still here"))["ok"]  # the connection is still usable


@pytest.mark.parametrize("command", COMMANDS)
async def test_a_supervisor_of_another_queue_is_refused(server: Server, command: str) -> None:  # noqa: F811
    client = await server.connect(Role.SUPERVISOR, "s1")  # s1 supervises sales; the call is in support
    await client.recv()
    reply = await client.command(command, call_id="c3")
    assert reply["ok"] is False and reply["error"]["code"] == "forbidden", reply
    assert not _supervision_actions(server)


async def test_the_queues_supervisor_is_obeyed(server: Server) -> None:  # noqa: F811
    client = await server.connect(Role.SUPERVISOR, "s2")
    await client.recv()
    for command in ("monitor", "whisper", "barge", "end_supervision"):
        reply = await client.command(command, call_id="c3")
        assert reply["ok"] is True, reply
    reply = await client.command("take_over", call_id="c3")
    assert reply["ok"] is True, reply
    assert [a[0] for a in _supervision_actions(server)] == [
        "supervise", "supervise", "supervise", "end_supervision", "take_over"]
    assert all(a[1] == "s2" and a[2] == "c3" for a in _supervision_actions(server))
    forged = await client.command("barge", call_id="c3", supervisor_id="s1")
    assert forged["ok"] is False and forged["error"]["code"] == "forbidden"
