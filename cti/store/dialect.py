"""The SQL dialects the store's portable SQL runs in, for the few statements that differ.

Everything else in ``queries.py``, ``rows.py`` and ``migrate.py`` is written once. The differences
are: the auto-numbered key in DDL (``schema.py``), and on PostgreSQL, where several processes
write at once under ``READ COMMITTED`` instead of behind SQLite's single write lock, the row and
advisory locks taken by ``claim_due``, ``record_agent_state`` and the outbox state changes
(``queries.py``).
"""

from __future__ import annotations

import enum


class Dialect(enum.Enum):
    """A database engine the store runs on."""

    SQLITE = "sqlite"
    POSTGRES = "postgres"
