"""The node's implementations of two of the call's ports: transfer targets (cti/node/transfers.py) and phones
(cti/node/phones.py). The rules are stated here, not read from the code: a transfer names a known queue, or a
logged-in agent other than the one on the call who serves a queue (the call's own when it can); a leg's SRTP
policy is the agent's or trunk's own setting, else ``media.srtp``."""

from __future__ import annotations

from typing import Any, cast

import pytest

from acd import LoginAgent, Router
from config.schema import ServerConfig
from cti.call.ports import PhonePort, Transfer, TransferTargets
from cti.call.srtp import SrtpPolicy
from cti.errors import ControlError
from cti.node.phones import Phones
from cti.node.registration import RegistrationService
from cti.node.routing import agent_config, queue_config
from cti.node.transfers import Transfers

CONFIG = ServerConfig.model_validate({
    "agents": [{"id": "1001", "password": "pw-1001", "skills": {"sales": 5}},
               {"id": "1002", "password": "pw-1002", "skills": {"sales": 3, "support": 5}, "srtp": "mandatory"},
               {"id": "1004", "password": "pw-1004", "skills": {"vip": 5}},
               {"id": "1005", "password": "pw-1005"}],
    "queues": [{"name": "sales", "skills": {"sales": 1}}, {"name": "support", "skills": {"support": 1}}],
    "trunks": [{"name": "plain", "allow": ["127.0.0.1"], "srtp": "off"}, {"name": "carrier", "allow": ["127.0.0.1"]}],
    "media": {"srtp": "optional"},
})


def _transfers(logged_in: tuple[str, ...] = ("1001", "1002", "1005")) -> TransferTargets:
    queues = {q.name: q for q in CONFIG.queues}
    agents = {a.id: a for a in CONFIG.agents}
    router = Router([queue_config(q) for q in CONFIG.queues])
    for agent_id in logged_in:
        router.handle(LoginAgent(agent=agent_config(agents[agent_id], queues.values()), ready=True), 0.0)
    return Transfers(queues, agents, router)


def _refused(action: Any) -> tuple[str, int]:
    with pytest.raises(ControlError) as caught:
        action()
    return caught.value.code, caught.value.status


def test_a_transfer_to_a_queue_needs_a_known_queue() -> None:
    transfers = _transfers()
    assert transfers.queue_transfer("support") == Transfer(queue="support")
    assert _refused(lambda: transfers.queue_transfer("billing")) == ("unknown_queue", 404)


def test_a_transfer_to_an_agent_goes_through_the_calls_queue_when_the_agent_serves_it() -> None:
    transfers = _transfers()
    assert transfers.agent_transfer("1002", "support", "1001") == Transfer(queue="support", agent="1002")
    # 1001 serves sales only: the call leaves support for sales, waiting for 1001 alone
    assert transfers.agent_transfer("1001", "support", "1002") == Transfer(queue="sales", agent="1001")
    # no current queue: the first queue (by name) the agent serves
    assert transfers.agent_transfer("1002", None, "1001") == Transfer(queue="sales", agent="1002")


def test_a_transfer_to_an_agent_is_refused_with_a_stable_code() -> None:
    transfers = _transfers()
    assert _refused(lambda: transfers.agent_transfer("9999", "sales", "1001")) == ("unknown_agent", 404)
    assert _refused(lambda: transfers.agent_transfer("1001", "sales", "1001")) == ("transfer_to_self", 409)
    assert _refused(lambda: transfers.agent_transfer("1004", "sales", "1001")) == ("agent_logged_out", 409)
    assert _refused(lambda: transfers.agent_transfer("1005", "sales", "1001")) == ("agent_serves_no_queue", 409)


def test_an_agent_added_at_run_time_is_a_target_at_once() -> None:
    queues = {q.name: q for q in CONFIG.queues}
    agents = {a.id: a for a in CONFIG.agents if a.id != "1002"}
    router = Router([queue_config(q) for q in CONFIG.queues])
    transfers = Transfers(queues, agents, router)
    assert _refused(lambda: transfers.agent_transfer("1002", "support", "1001"))[0] == "unknown_agent"
    added = next(a for a in CONFIG.agents if a.id == "1002")
    agents["1002"] = added  # the live table RuntimeAgents changes
    router.handle(LoginAgent(agent=agent_config(added, queues.values()), ready=True), 0.0)
    assert transfers.agent_transfer("1002", "support", "1001") == Transfer(queue="support", agent="1002")


def _phones(agents: dict[str, Any] | None = None) -> PhonePort:
    return Phones(RegistrationService(CONFIG), cast(Any, None), CONFIG,
                  agents if agents is not None else {a.id: a for a in CONFIG.agents})


def test_a_legs_srtp_policy_is_its_own_setting_else_the_nodes() -> None:
    phones = _phones()
    assert phones.srtp_policy() is SrtpPolicy.OPTIONAL  # media.srtp
    assert phones.srtp_policy(trunk="plain") is SrtpPolicy.OFF
    assert phones.srtp_policy(trunk="carrier") is SrtpPolicy.OPTIONAL  # the trunk sets none
    assert phones.srtp_policy(trunk="unknown") is SrtpPolicy.OPTIONAL
    assert phones.srtp_policy(agent="1002") is SrtpPolicy.MANDATORY
    assert phones.srtp_policy(agent="1001") is SrtpPolicy.OPTIONAL


def test_an_unregistered_user_has_no_phone() -> None:
    assert _phones().binding("1001") is None
