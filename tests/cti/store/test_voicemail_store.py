"""The ``voicemail`` table (migration of docs/storage.md) on both backends: the writer's insert job, the list's
filters, the heard mark kept from its first listener."""

from __future__ import annotations

import pytest

from cti.store import NotFoundError, Store
from cti.voicemail import VoicemailMessage, VoicemailStore, insert_job


def _message(n: int, *, mailbox: str = "support", queue: str | None = "support") -> VoicemailMessage:
    return VoicemailMessage(id=f"vm-20261207-{n:012x}", call_id=f"c{n}", mailbox=mailbox, queue=queue,
                            caller=f"555000{n}", started=1000.0 + n, duration_s=2.5 + n, path=f"vm-{n}.wav")


async def test_insert_list_filter_and_mark_heard(store: Store) -> None:
    for message in (_message(1), _message(2, mailbox="after_hours", queue=None), _message(3)):
        await store.run_batch(insert_job(message))
    box = VoicemailStore(store)
    assert [m.id for m in await box.list()] == [_message(3).id, _message(2).id, _message(1).id]  # newest first
    assert await box.list(mailbox="support", limit=1) == [_message(3)]
    assert [m.call_id for m in await box.list(queues=frozenset({"support"}))] == ["c3", "c1"]
    assert await box.list(queues=frozenset()) == []  # a supervisor of no queue sees nothing
    first = await box.mark_heard(_message(1).id, "supervisor:sup1", 2000.0)
    assert (first.heard, first.heard_by, first.heard_at) == (True, "supervisor:sup1", 2000.0)
    again = await box.mark_heard(_message(1).id, "operator", 3000.0)
    assert (again.heard_by, again.heard_at) == ("supervisor:sup1", 2000.0)  # the first listener is kept
    assert [m.call_id for m in await box.list(unheard=True)] == ["c3", "c2"]
    assert [m.call_id for m in await box.list(unheard=False)] == ["c1"]
    assert await box.get(_message(2).id) == _message(2, mailbox="after_hours", queue=None)


async def test_unknown_message(store: Store) -> None:
    box = VoicemailStore(store)
    with pytest.raises(NotFoundError):
        await box.get("vm-nope")
    with pytest.raises(NotFoundError):
        await box.mark_heard("vm-nope", "operator", 1.0)
