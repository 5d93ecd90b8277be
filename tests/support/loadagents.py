"""Many agents answered by one SIPp UAS, for load and soak benchmarks.

Each agent is registered with ``agent_register.xml`` (one short SIPp process per agent, a few at a
time) with its Contact at the port of one ``load_agent_uas.xml`` process that answers every call;
then logged in and made ready through the admin API (:func:`tests.support.sipp.agent_login_ready`).
The registration lasts 300 s (the scenario's Expires): a run longer than that calls
:func:`register_agents` again every few minutes, as a phone refreshes its binding.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

from tests.support.sipp import HOST, SippRunner, agent_login_ready

REGISTRATION_S = 300  # Expires of tests/interop/scenarios/agent_register.xml


def register_agents(runner: SippRunner, sip_port: int, agents: Iterable[str], contact_port: int, *,
                    password: str = "demo{id}", http_port: int | None = None, parallel: int = 8) -> None:
    """Register ``agents`` with their Contact at ``contact_port``; with ``http_port``, log them in ready.

    ``password`` is a format string (``{id}`` = the agent id). A REGISTER that fails is tried three
    times (SIPp may pick a media port that is taken meanwhile).

    Raises:
        RuntimeError: an agent could not be registered (the SIPp work directory has its log).
    """

    def register(agent: str) -> int:
        rc = -1
        for _ in range(3):
            rc = runner.register_at(f"{HOST}:{sip_port}", agent, contact_port, password=password.format(id=agent))
            if rc == 0:
                break
        return rc

    agents = list(agents)
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        codes = dict(zip(agents, pool.map(register, agents), strict=True))
    failed = [agent for agent, rc in codes.items() if rc != 0]
    if failed:
        raise RuntimeError(f"REGISTER failed for agents {', '.join(failed[:10])} (see {runner.workdir})")
    if http_port is not None:
        for agent in agents:
            agent_login_ready(http_port, agent)
