"""Schema of the store and its forward migrations (docs/storage.md describes every column).

Migrations are numbered from 1 and only ever appended: a released migration is never edited.
``schema_version`` holds one row per applied migration. The DDL keeps to standard SQL types
(``TEXT``, ``INTEGER``, ``BIGINT``, ``BOOLEAN``, ``DOUBLE PRECISION``) that SQLite maps to its
affinities; the one SQLite-specific form is the auto-numbered key ``INTEGER PRIMARY KEY``, which PostgreSQL
writes ``BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY`` (``IDENTITY_KEY``,
``POSTGRES_IDENTITY_KEY``): a migration whose DDL differs carries ``postgres_statements`` too.
JSON columns are ``TEXT`` on both (the code stores serialised text); timestamps are epoch
seconds in ``DOUBLE PRECISION``.
"""

from __future__ import annotations

from dataclasses import dataclass

from cti.store.dialect import Dialect

IDENTITY_KEY = "INTEGER PRIMARY KEY"
POSTGRES_IDENTITY_KEY = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"


@dataclass(frozen=True, slots=True, kw_only=True)
class Migration:
    """One forward step of the schema: run ``statements`` in order, in one transaction.

    ``postgres_statements`` replaces ``statements`` on PostgreSQL where the DDL differs (None: the
    same statements run on both).
    """

    version: int
    description: str
    statements: tuple[str, ...]
    postgres_statements: tuple[str, ...] | None = None

    def statements_for(self, dialect: Dialect) -> tuple[str, ...]:
        """The statements to run on ``dialect``."""
        if dialect is Dialect.POSTGRES and self.postgres_statements is not None:
            return self.postgres_statements
        return self.statements


SCHEMA_VERSION_DDL = """
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  DOUBLE PRECISION NOT NULL
)"""


def _v1(identity_key: str) -> tuple[str, ...]:
    return (
    """
CREATE TABLE calls (
    call_id          TEXT PRIMARY KEY,
    node             TEXT NOT NULL,
    sip_call_id      TEXT,
    trunk            TEXT,
    caller_number    TEXT,
    caller_name      TEXT,
    dialled_number   TEXT,
    t_arrived        DOUBLE PRECISION NOT NULL,
    t_ivr_answered   DOUBLE PRECISION,
    t_ivr_left       DOUBLE PRECISION,
    t_queued         DOUBLE PRECISION,
    t_answered       DOUBLE PRECISION,
    t_ended          DOUBLE PRECISION,
    hangup_by        TEXT,
    end_reason       TEXT,
    disposition      TEXT,
    ivr_inputs       TEXT NOT NULL,
    crm_data         TEXT NOT NULL,
    vip              BOOLEAN NOT NULL,
    call_reason      TEXT,
    recording_serial TEXT,
    final_agent      TEXT,
    final_queue      TEXT
)""",
    "CREATE INDEX calls_t_arrived ON calls (t_arrived)",
    "CREATE INDEX calls_caller_number ON calls (caller_number, t_arrived)",
    """
CREATE TABLE queue_legs (
    leg_id           TEXT PRIMARY KEY,
    call_id          TEXT NOT NULL,
    queue_id         TEXT NOT NULL,
    outcome          TEXT NOT NULL,
    skills           TEXT NOT NULL,
    priority         INTEGER NOT NULL,
    vip_flag         BOOLEAN NOT NULL,
    caller_number    TEXT,
    call_reason      TEXT,
    t_enter_queue    DOUBLE PRECISION NOT NULL,
    t_answer         DOUBLE PRECISION,
    t_abandon        DOUBLE PRECISION,
    t_flowout        DOUBLE PRECISION,
    flowout_reason   TEXT,
    t_end            DOUBLE PRECISION,
    agent_id         TEXT,
    talk_s           DOUBLE PRECISION NOT NULL,
    hold_s           DOUBLE PRECISION NOT NULL,
    acw_s            DOUBLE PRECISION NOT NULL,
    offers           INTEGER NOT NULL,
    recording_serial TEXT
)""",
    "CREATE INDEX queue_legs_enter ON queue_legs (t_enter_queue, queue_id)",
    "CREATE INDEX queue_legs_call ON queue_legs (call_id)",
    f"""
CREATE TABLE agent_state_history (
    row_id    {identity_key},
    agent_id  TEXT NOT NULL,
    state     TEXT NOT NULL,
    reason    TEXT,
    start_ts  DOUBLE PRECISION NOT NULL,
    end_ts    DOUBLE PRECISION
)""",
    "CREATE INDEX agent_state_history_agent ON agent_state_history (agent_id, start_ts)",
    """
CREATE TABLE recordings (
    serial     TEXT PRIMARY KEY,
    call_id    TEXT NOT NULL,
    path       TEXT NOT NULL,
    started    DOUBLE PRECISION NOT NULL,
    ended      DOUBLE PRECISION,
    duration_s DOUBLE PRECISION,
    parties    TEXT NOT NULL,
    queue_id   TEXT,
    agent_id   TEXT
)""",
    "CREATE INDEX recordings_call ON recordings (call_id)",
    """
CREATE TABLE serial_counters (
    site     TEXT NOT NULL,
    day      TEXT NOT NULL,
    last_seq BIGINT NOT NULL,
    PRIMARY KEY (site, day)
)""",
    f"""
CREATE TABLE outbox (
    entry_id        {identity_key},
    endpoint        TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created         DOUBLE PRECISION NOT NULL,
    status          TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at DOUBLE PRECISION NOT NULL,
    lease_until     DOUBLE PRECISION,
    last_error      TEXT,
    delivered_at    DOUBLE PRECISION,
    UNIQUE (endpoint, event_id)
)""",
    "CREATE INDEX outbox_pending ON outbox (status, endpoint, entry_id)",
    )  # fmt: skip


_V2 = (
    # Agent look-ups by time (adherence over a day) and the "event" attribution of legs.
    "CREATE INDEX queue_legs_agent ON queue_legs (agent_id, t_enter_queue)",
    "CREATE INDEX recordings_started ON recordings (started)",
)

_V3 = (
    # What was wrong with a record the node could not store as built (docs/reliability.md): the
    # record is stored repaired, never dropped, and says so here.
    "ALTER TABLE calls ADD COLUMN problems TEXT",
    # Calls left open by a crash are found at start (one node's open calls, few at any time).
    "CREATE INDEX calls_open ON calls (node) WHERE t_ended IS NULL",
)


def _v4_qa(identity_key: str) -> tuple[str, ...]:
    """Quality assurance (docs/qa.md): rules and their samples, forms, evaluations with their revisions,
    appeals, the audit trail of every QA step, the playback log and the good-call library with its view log."""
    return (
    """
CREATE TABLE qa_rules (
    rule_id          TEXT NOT NULL,
    version          INTEGER NOT NULL,
    body             TEXT NOT NULL,
    rule_hash        TEXT NOT NULL,
    seed_commitment  TEXT NOT NULL,
    seed             TEXT,
    seed_revealed    BOOLEAN NOT NULL,
    published_at     DOUBLE PRECISION NOT NULL,
    published_by     TEXT NOT NULL,
    closed_at        DOUBLE PRECISION,
    closed_by        TEXT,
    days             TEXT,
    input_digest     TEXT,
    selection_digest TEXT,
    PRIMARY KEY (rule_id, version)
)""",
    """
CREATE TABLE qa_samples (
    rule_id          TEXT NOT NULL,
    version          INTEGER NOT NULL,
    seq              INTEGER NOT NULL,
    agent_id         TEXT NOT NULL,
    local_date       TEXT,
    queue_id         TEXT,
    recording_serial TEXT,
    leg_id           TEXT,
    reason           TEXT NOT NULL,
    eligible         INTEGER NOT NULL,
    evaluator        TEXT,
    PRIMARY KEY (rule_id, version, seq)
)""",
    "CREATE INDEX qa_samples_evaluator ON qa_samples (evaluator)",
    """
CREATE TABLE qa_forms (
    form_id      TEXT NOT NULL,
    version      INTEGER NOT NULL,
    body         TEXT NOT NULL,
    published_at DOUBLE PRECISION NOT NULL,
    published_by TEXT NOT NULL,
    PRIMARY KEY (form_id, version)
)""",
    f"""
CREATE TABLE qa_evaluations (
    evaluation_id    {identity_key},
    recording_serial TEXT NOT NULL,
    agent_id         TEXT NOT NULL,
    queue_id         TEXT,
    form_id          TEXT NOT NULL,
    form_version     INTEGER NOT NULL,
    evaluator        TEXT NOT NULL,
    rule_id          TEXT,
    rule_version     INTEGER,
    calibration      BOOLEAN NOT NULL,
    state            TEXT NOT NULL,
    created_at       DOUBLE PRECISION NOT NULL,
    published_at     DOUBLE PRECISION
)""",
    "CREATE INDEX qa_evaluations_agent ON qa_evaluations (agent_id, created_at)",
    "CREATE INDEX qa_evaluations_serial ON qa_evaluations (recording_serial)",
    """
CREATE TABLE qa_revisions (
    evaluation_id BIGINT NOT NULL,
    revision      INTEGER NOT NULL,
    scores        TEXT NOT NULL,
    total         DOUBLE PRECISION,
    raw_total     DOUBLE PRECISION,
    failed        BOOLEAN NOT NULL,
    author        TEXT NOT NULL,
    at            DOUBLE PRECISION NOT NULL,
    why           TEXT,
    PRIMARY KEY (evaluation_id, revision)
)""",
    f"""
CREATE TABLE qa_appeals (
    appeal_id     {identity_key},
    evaluation_id BIGINT NOT NULL,
    agent_id      TEXT NOT NULL,
    evaluator     TEXT NOT NULL,
    item_ids      TEXT NOT NULL,
    reason        TEXT NOT NULL,
    state         TEXT NOT NULL,
    filed_at      DOUBLE PRECISION NOT NULL,
    reviewer      TEXT,
    decided_at    DOUBLE PRECISION,
    comment       TEXT
)""",
    "CREATE INDEX qa_appeals_evaluation ON qa_appeals (evaluation_id)",
    f"""
CREATE TABLE qa_audit (
    row_id  {identity_key},
    subject TEXT NOT NULL,
    action  TEXT NOT NULL,
    actor   TEXT NOT NULL,
    at      DOUBLE PRECISION NOT NULL,
    detail  TEXT NOT NULL
)""",
    "CREATE INDEX qa_audit_subject ON qa_audit (subject, row_id)",
    f"""
CREATE TABLE qa_playbacks (
    row_id           {identity_key},
    recording_serial TEXT NOT NULL,
    actor            TEXT NOT NULL,
    at               DOUBLE PRECISION NOT NULL,
    channel          TEXT NOT NULL,
    range_start      BIGINT,
    range_end        BIGINT,
    status           INTEGER NOT NULL
)""",
    "CREATE INDEX qa_playbacks_serial ON qa_playbacks (recording_serial, at)",
    f"""
CREATE TABLE qa_library (
    entry_id         {identity_key},
    recording_serial TEXT NOT NULL,
    agent_id         TEXT,
    nominated_by     TEXT NOT NULL,
    nominated_at     DOUBLE PRECISION NOT NULL,
    reason           TEXT NOT NULL,
    tags             TEXT NOT NULL,
    state            TEXT NOT NULL,
    reviewer         TEXT,
    reviewed_at      DOUBLE PRECISION,
    review_comment   TEXT,
    note             TEXT,
    redactions       TEXT NOT NULL,
    retired_at       DOUBLE PRECISION,
    retired_by       TEXT
)""",
    "CREATE INDEX qa_library_state ON qa_library (state, entry_id)",
    f"""
CREATE TABLE qa_library_views (
    row_id   {identity_key},
    entry_id BIGINT NOT NULL,
    viewer   TEXT NOT NULL,
    at       DOUBLE PRECISION NOT NULL
)""",
    )  # fmt: skip

_V5 = (
    # Reports: every agent's state rows over a range (occupancy, time per state, ring times).
    "CREATE INDEX agent_state_history_start ON agent_state_history (start_ts)",
    # Reports: AHT by the end of handling and the "event" attribution read legs by their talk end.
    "CREATE INDEX queue_legs_end ON queue_legs (t_end)",
)
def _v6_adherence(identity_key: str) -> tuple[str, ...]:
    # Schedules and supervisor-approved exceptions of schedule adherence (docs/adherence.md).
    return (
        f"""
CREATE TABLE schedule_entries (
    entry_id    {identity_key},
    agent_id    TEXT NOT NULL,
    start_ts    DOUBLE PRECISION NOT NULL,
    end_ts      DOUBLE PRECISION NOT NULL,
    activity    TEXT NOT NULL,
    note        TEXT,
    source      TEXT,
    imported_at DOUBLE PRECISION NOT NULL
)""",
        "CREATE INDEX schedule_entries_agent ON schedule_entries (agent_id, start_ts)",
        "CREATE INDEX schedule_entries_start ON schedule_entries (start_ts)",
        f"""
CREATE TABLE schedule_exceptions (
    exception_id {identity_key},
    agent_id     TEXT NOT NULL,
    start_ts     DOUBLE PRECISION NOT NULL,
    end_ts       DOUBLE PRECISION NOT NULL,
    activity     TEXT,
    reason       TEXT NOT NULL,
    approved_by  TEXT NOT NULL,
    approved_at  DOUBLE PRECISION NOT NULL
)""",
        "CREATE INDEX schedule_exceptions_agent ON schedule_exceptions (agent_id, start_ts)",
    )


_V7_APPEAL_PANEL = (
    "ALTER TABLE qa_appeals ADD COLUMN leader TEXT",
    "ALTER TABLE qa_appeals ADD COLUMN admitted_at DOUBLE PRECISION",
    "ALTER TABLE qa_appeals ADD COLUMN decision_deadline DOUBLE PRECISION",
    "ALTER TABLE qa_appeals ADD COLUMN decision_rule TEXT",
    "UPDATE qa_appeals SET state = 'overturned' WHERE state = 'amended'",
    "UPDATE qa_appeals SET state = 'rejected_by_leader' WHERE state = 'rejected'",
    """
CREATE TABLE qa_appeal_opinions (
    appeal_id BIGINT NOT NULL,
    seat      TEXT NOT NULL,
    member    TEXT NOT NULL,
    verdict   TEXT NOT NULL,
    points    TEXT NOT NULL,
    comment   TEXT NOT NULL,
    at        DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (appeal_id, seat)
)""",
)

_V8 = (
    # The agent desktop's screen pop: a caller's last calls, newest first (GET /api/v1/calls/{id}/contacts).
    "CREATE INDEX calls_caller ON calls (caller_number, t_arrived)",
    # The agent's wrap-up notes on the CDR (end_wrap_up's notes).
    "ALTER TABLE calls ADD COLUMN wrap_up_notes TEXT",
)

_V9_VOICEMAIL = (
    # Messages callers left at a flow's voicemail node (docs/voicemail.md); the WAV is under <data_dir>/voicemail.
    """
CREATE TABLE voicemail (
    voicemail_id  TEXT PRIMARY KEY,
    call_id       TEXT NOT NULL,
    mailbox       TEXT NOT NULL,
    queue         TEXT,
    caller_number TEXT NOT NULL,
    started       DOUBLE PRECISION NOT NULL,
    duration_s    DOUBLE PRECISION NOT NULL,
    path          TEXT NOT NULL,
    heard         BOOLEAN NOT NULL,
    heard_at      DOUBLE PRECISION,
    heard_by      TEXT
)""",
    "CREATE INDEX voicemail_mailbox ON voicemail (mailbox, started)",
    "CREATE INDEX voicemail_queue ON voicemail (queue, started)",
)

_V10 = (
    # An agent's open state row, read and closed at every state change: without this the look-up walks the
    # agent's whole history (agent_state_history_agent's range of the agent), so each change cost more as the
    # history grew (0.6 ms a query at 2,000 rows an agent; a busy agent makes that in a few weeks).
    "CREATE INDEX agent_state_history_open ON agent_state_history (agent_id, start_ts, row_id) WHERE end_ts IS NULL",
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(version=1, description="calls, queue legs, agent states, recordings, serials, outbox",
              statements=_v1(IDENTITY_KEY), postgres_statements=_v1(POSTGRES_IDENTITY_KEY)),
    Migration(version=2, description="indexes for agent and recording look-ups by time", statements=_V2),
    Migration(version=3, description="calls.problems; index of open calls per node", statements=_V3),
    Migration(version=4, description="quality assurance: rules, samples, forms, evaluations, appeals, library",
              statements=_v4_qa(IDENTITY_KEY), postgres_statements=_v4_qa(POSTGRES_IDENTITY_KEY)),
    Migration(version=5, description="indexes for reports: agent states and leg ends by time", statements=_V5),
    Migration(version=6, description="adherence: schedule entries and approved exceptions",
              statements=_v6_adherence(IDENTITY_KEY), postgres_statements=_v6_adherence(POSTGRES_IDENTITY_KEY)),
    Migration(version=7, description="QA appeals: team-leader admission, the three-party panel's opinions, "
              "the decision deadline", statements=_V7_APPEAL_PANEL),
    Migration(version=8, description="calls by caller number (the screen pop's previous contacts); calls.wrap_up_notes",
              statements=_V8),
    Migration(version=9, description="voicemail messages", statements=_V9_VOICEMAIL),
    Migration(version=10, description="index of agents' open state rows", statements=_V10),
)

LATEST_VERSION = MIGRATIONS[-1].version
