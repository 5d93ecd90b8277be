"""An agent's state change reads and closes its open row through the partial index of migration 10, not by
walking the agent's history (which grows by a few rows a call, for ever): checked on SQLite's query plans, with
a history in the table, and the rows it gives are the same as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from acd import AgentId, AgentState
from cti.store import open_store
from cti.store.queries import _CLOSE_STATE, _OPEN_STATE


def _plan(db: sqlite3.Connection, sql: str, args: tuple[object, ...]) -> str:
    return " ".join(str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))


async def test_a_state_change_uses_the_open_row_index_whatever_the_history(db_path: Path) -> None:
    store = await open_store(db_path)
    try:
        t = 1_000.0
        for agent in ("1001", "1002"):
            for n in range(300):
                t += 1.0
                await store.record_agent_state(AgentId(agent), (AgentState.AVAILABLE, AgentState.ON_CALL)[n % 2], t)
        current = await store.current_agent_state(AgentId("1001"))
        assert current is not None and current.state is AgentState.ON_CALL and current.end is None
        assert current.start == 1_300.0
    finally:
        await store.close()
    with sqlite3.connect(db_path) as db:
        db.execute("ANALYZE")  # the planner's statistics of a table with a history: the index must still win
        assert "agent_state_history_open" in _plan(db, _OPEN_STATE, ("1001",))
        assert "agent_state_history_open" in _plan(db, _CLOSE_STATE, (2_000.0, "1001"))
        assert db.execute("SELECT COUNT(*) FROM agent_state_history WHERE end_ts IS NULL").fetchone() == (2,)
