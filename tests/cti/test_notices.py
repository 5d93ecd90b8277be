"""cti.floor.notices: the board (pure, time stepped by hand), the service on a bus, and the command rules."""

from __future__ import annotations

import pytest

from cti.events.bus import Bus
from cti.events.registry import REGISTRY, Envelope
from cti.floor.notices import NoticeBoard, NoticeError, NoticeService, Priority, run_notice_command
from cti.gateway import Scope, visible
from cti.tokens import Principal, Role

T0 = 1_700_000_000.0
AGENT = Principal(role=Role.AGENT, subject="a1", expires_at=1e12)
SUP = Principal(role=Role.SUPERVISOR, subject="s1", expires_at=1e12)
OP = Principal(role=Role.OPERATOR, subject="operator", expires_at=1e12)


def test_pending_for_follows_audience_expiry_and_reads() -> None:
    board = NoticeBoard()
    everyone = board.post(sender="s1", text="fire drill at 3", now=T0)
    sales = board.post(sender="s1", text="promo ends", now=T0, audience=["sales"], expires_at=T0 + 60,
                       priority=Priority.URGENT)
    team = board.post(sender="s1", text="team huddle", now=T0, audience=["team:t1"])
    ack = board.post(sender="s1", text="read the policy", now=T0, require_ack=True)
    ids = [n.notice_id for n in board.pending_for("a1", ["sales"], "t1", T0 + 1)]
    assert ids == [everyone.notice_id, sales.notice_id, team.notice_id, ack.notice_id]
    assert [n.notice_id for n in board.pending_for("a3", ["support"], "t2", T0 + 1)] == [
        everyone.notice_id, ack.notice_id]
    assert sales.notice_id not in [n.notice_id for n in board.pending_for("a1", ["sales"], "t1", T0 + 60)]
    board.mark_delivered(everyone.notice_id, "a1", T0 + 2)
    board.mark_delivered(everyone.notice_id, "a1", T0 + 9)  # the first delivery time is kept
    read = board.mark_read(everyone.notice_id, "a1", T0 + 5)
    assert read is not None and (read.delivered_at, read.read_at, read.ack_at) == (T0 + 2, T0 + 5, None)
    assert board.mark_read(everyone.notice_id, "a1", T0 + 6) is None  # nothing new
    board.mark_read(ack.notice_id, "a1", T0 + 7)
    pending = [n.notice_id for n in board.pending_for("a1", ["sales"], "t1", T0 + 8)]
    assert everyone.notice_id not in pending and ack.notice_id in pending  # read, but not acknowledged
    acked = board.mark_read(ack.notice_id, "a1", T0 + 9, ack=True)
    assert acked is not None and acked.read_at == T0 + 7 and acked.ack_at == T0 + 9
    assert [r.agent_id for r in board.receipts(everyone.notice_id)] == ["a1"]
    assert board.expire(T0 + 61) == [sales.notice_id]
    with pytest.raises(NoticeError) as err:
        board.receipts(sales.notice_id)
    assert err.value.code == "unknown_notice"


def test_bad_notices_are_refused() -> None:
    board = NoticeBoard(max_notices=2)
    for bad in ({"text": ""}, {"text": "x" * 2001}, {"text": "x", "audience": []},
                {"text": "x", "expires_at": T0}):
        with pytest.raises(NoticeError):
            board.post(sender="s1", now=T0, **bad)  # type: ignore[arg-type]
    first = board.post(sender="s1", text="1", now=T0)
    board.post(sender="s1", text="2", now=T0)
    board.post(sender="s1", text="3", now=T0)
    with pytest.raises(NoticeError):
        board.get(first.notice_id)  # the oldest went when the board was full


def test_service_publishes_schema_valid_events_and_commands_check_roles() -> None:
    bus = Bus(validate_schemas=True)
    events = bus.subscribe("notice.*")
    service = NoticeService(bus, "n1")
    sent = run_notice_command(service, SUP, frozenset({"sales"}), "broadcast",
                              {"text": "queue is long", "priority": "urgent", "expires_in_s": 600}, T0)
    assert sent["audience"] == ["sales"] and sent["expires_at"] == T0 + 600 and sent["priority"] == "urgent"
    broadcast = events.get_nowait()
    assert broadcast.type == "notice.broadcast" and broadcast.data == sent and broadcast.ts == T0
    for who, queues, args, code in (
        (AGENT, frozenset({"sales"}), {"text": "hi"}, "forbidden"),
        (SUP, frozenset({"sales"}), {"text": "hi", "audience": "*"}, "forbidden"),
        (SUP, frozenset({"sales"}), {"text": "hi", "audience": ["support"]}, "forbidden"),
        (SUP, frozenset({"sales"}), {"text": "hi", "priority": "loud"}, "bad_args"),
        (SUP, frozenset({"sales"}), {"text": "hi", "expires_in_s": -1}, "bad_args"),
    ):
        with pytest.raises(NoticeError) as err:
            run_notice_command(service, who, queues, "broadcast", args, T0)
        assert err.value.code == code, args
    assert run_notice_command(service, OP, None, "broadcast", {"text": "all"}, T0)["audience"] == ["*"]
    events.get_nowait()
    nid = sent["notice_id"]
    with pytest.raises(NoticeError) as err:
        run_notice_command(service, AGENT, frozenset({"support"}), "notice_read", {"notice_id": nid}, T0)
    assert err.value.code == "forbidden"  # not addressed to a support agent
    reply = run_notice_command(service, AGENT, frozenset({"sales"}), "notice_read", {"notice_id": nid}, T0 + 3)
    assert reply["read_at"] == T0 + 3 and reply["ack_at"] is None
    read = events.get_nowait()
    assert read.type == "notice.read" and read.data["agent_id"] == "a1" and read.data["sender"] == "s1"
    run_notice_command(service, AGENT, frozenset({"sales"}), "notice_read", {"notice_id": nid}, T0 + 4)
    assert events.qsize() == 0  # a second read changes nothing and publishes nothing
    receipts = run_notice_command(service, SUP, frozenset({"sales"}), "notice_receipts", {"notice_id": nid}, T0 + 5)
    assert receipts["receipts"] == [{"agent_id": "a1", "delivered_at": T0 + 3, "read_at": T0 + 3, "ack_at": None}]
    with pytest.raises(NoticeError):
        run_notice_command(service, AGENT, frozenset({"sales"}), "notice_receipts", {"notice_id": nid}, T0)


def test_new_event_types_are_registered_and_routed() -> None:
    assert {"call.reason", "notice.read"} <= set(REGISTRY)
    read = Envelope(type="notice.read", id="1", ts=T0, node="n", data={
        "notice_id": "n-1", "agent_id": "a1", "read_at": T0, "ack_at": None, "sender": "s9", "audience": ["sales"]})
    sales = Scope(agents=frozenset({"a1"}), queues=frozenset({"sales"}))
    support = Scope(agents=frozenset({"a3"}), queues=frozenset({"support"}))
    assert visible(SUP, sales, read) and not visible(SUP, support, read)
    assert not visible(AGENT, sales, read)  # receipts are for supervisors
    reason = Envelope(type="call.reason", id="2", ts=T0, node="n",
                      data={"call_id": "c1", "reason": "billing", "source": "ivr"})
    assert visible(OP, Scope(agents=None, queues=None), reason) and not visible(AGENT, sales, reason)
