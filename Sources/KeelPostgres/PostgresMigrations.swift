import WorkflowRuntime

/// The PostgreSQL schema, as numbered migrations compiled into the binary (a `worker` copied alone
/// anywhere still migrates). Each number means the same change on every backend. Never edit a
/// migration once it has landed: add the next one.
extension PostgresDriver {
    package static let migrations: [SchemaMigration] = [
        SchemaMigration(
            name: "0001_initial",
            sql: #"""
                -- Keel schema, version 1 (same number and meaning as SQLite's 0001_initial.sql). Times are
                -- seconds since 1970 (double precision), as on SQLite. Numbered migrations are never edited once
                -- landed.

                CREATE TABLE workflow_runs (
                    run_id            TEXT PRIMARY KEY,
                    workflow_id       TEXT NOT NULL,
                    workflow_type     TEXT NOT NULL,
                    status            TEXT NOT NULL,
                    input             BYTEA NOT NULL,
                    result            BYTEA,
                    failure           BYTEA,
                    status_reason     TEXT,
                    created_at        DOUBLE PRECISION NOT NULL,
                    updated_at        DOUBLE PRECISION NOT NULL,
                    closed_at         DOUBLE PRECISION,
                    history_length    INTEGER NOT NULL,
                    task_version      INTEGER NOT NULL DEFAULT 0,
                    needs_task        BOOLEAN NOT NULL DEFAULT FALSE,
                    task_ready_at     DOUBLE PRECISION,
                    lease_owner       TEXT,
                    lease_token       BIGINT,
                    lease_expires_at  DOUBLE PRECISION
                );
                CREATE UNIQUE INDEX workflow_runs_open_workflow_id ON workflow_runs (workflow_id)
                    WHERE status IN ('running', 'blocked');
                CREATE INDEX workflow_runs_workflow_id ON workflow_runs (workflow_id, created_at);
                CREATE INDEX workflow_runs_ready ON workflow_runs (task_ready_at)
                    WHERE needs_task AND status = 'running';
                CREATE INDEX workflow_runs_created ON workflow_runs (created_at, run_id);
                CREATE INDEX workflow_runs_status_created ON workflow_runs (status, created_at, run_id);
                CREATE INDEX workflow_runs_type_created ON workflow_runs (workflow_type, created_at, run_id);

                CREATE TABLE history_events (
                    run_id     TEXT NOT NULL,
                    event_id   INTEGER NOT NULL,
                    kind       TEXT NOT NULL,
                    timestamp  DOUBLE PRECISION NOT NULL,
                    body       BYTEA NOT NULL,
                    PRIMARY KEY (run_id, event_id)
                );

                CREATE TABLE run_inbox (
                    id         BIGSERIAL PRIMARY KEY,
                    run_id     TEXT NOT NULL,
                    kind       TEXT NOT NULL,
                    timestamp  DOUBLE PRECISION NOT NULL,
                    body       BYTEA NOT NULL
                );
                CREATE INDEX run_inbox_run ON run_inbox (run_id, id);

                CREATE TABLE signal_requests (
                    run_id       TEXT NOT NULL,
                    request_id   TEXT NOT NULL,
                    received_at  DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (run_id, request_id)
                );

                CREATE TABLE activity_tasks (
                    id                BIGSERIAL PRIMARY KEY,
                    run_id            TEXT NOT NULL,
                    seq               INTEGER NOT NULL,
                    workflow_id       TEXT NOT NULL,
                    activity_name     TEXT NOT NULL,
                    input             BYTEA NOT NULL,
                    idempotency_key   TEXT NOT NULL,
                    options           BYTEA NOT NULL,
                    start_to_close    DOUBLE PRECISION,
                    attempt           INTEGER NOT NULL,
                    scheduled_at      DOUBLE PRECISION NOT NULL,
                    visible_at        DOUBLE PRECISION NOT NULL,
                    lease_owner       TEXT,
                    lease_token       BIGINT,
                    last_error        TEXT,
                    heartbeat_details BYTEA,
                    UNIQUE (run_id, seq)
                );
                CREATE INDEX activity_tasks_visible ON activity_tasks (visible_at);

                CREATE TABLE timers (
                    id       BIGSERIAL PRIMARY KEY,
                    run_id   TEXT NOT NULL,
                    seq      INTEGER NOT NULL,
                    fire_at  DOUBLE PRECISION NOT NULL,
                    UNIQUE (run_id, seq)
                );
                CREATE INDEX timers_fire_at ON timers (fire_at);
                """#),
        SchemaMigration(
            name: "0002_approvals_compensation",
            sql: #"""
                -- Keel schema, version 2 (same number and meaning as SQLite's 0002): approvals and compensation.

                -- A run whose compensation failed stays open (it waits for an operator's retry): it keeps its id.
                DROP INDEX workflow_runs_open_workflow_id;
                CREATE UNIQUE INDEX workflow_runs_open_workflow_id ON workflow_runs (workflow_id)
                    WHERE status IN ('running', 'blocked', 'compensationFailed');

                -- 'timer' for sleeps and signal timeouts, 'approval' for an approval's deadline.
                ALTER TABLE timers ADD COLUMN purpose TEXT NOT NULL DEFAULT 'timer';

                -- One row per approval request. request and decision hold the JSON of ApprovalRequest and
                -- ApprovalDecision; the other columns are what listing and deciding look up.
                CREATE TABLE approvals (
                    approval_id    TEXT PRIMARY KEY,
                    run_id         TEXT NOT NULL,
                    seq            INTEGER NOT NULL,
                    workflow_id    TEXT NOT NULL,
                    workflow_type  TEXT NOT NULL,
                    name           TEXT NOT NULL,
                    status         TEXT NOT NULL,
                    requested_at   DOUBLE PRECISION NOT NULL,
                    deadline       DOUBLE PRECISION NOT NULL,
                    request        BYTEA NOT NULL,
                    decision       BYTEA,
                    closed_at      DOUBLE PRECISION,
                    UNIQUE (run_id, seq)
                );
                CREATE INDEX approvals_requested ON approvals (requested_at, approval_id);
                CREATE INDEX approvals_pending ON approvals (requested_at, approval_id) WHERE status = 'pending';

                -- Every request, decision (accepted or refused), expiry and withdrawal. Refusals write only here.
                CREATE TABLE approval_audit (
                    id            BIGSERIAL PRIMARY KEY,
                    approval_id   TEXT NOT NULL,
                    run_id        TEXT NOT NULL,
                    at            DOUBLE PRECISION NOT NULL,
                    action        TEXT NOT NULL,
                    actor         TEXT,
                    role          TEXT,
                    origin        TEXT,
                    note          TEXT,
                    detail        TEXT,
                    payload_hash  TEXT
                );
                CREATE INDEX approval_audit_approval ON approval_audit (approval_id, id);
                """#),
        SchemaMigration(
            name: "0003_signal_request_fingerprint",
            sql: #"""
                -- Keel schema, version 3 (same number and meaning as SQLite's 0003): a signal's request id
                -- binds to the signal it first carried (SHA-256 of its name and payload), so a request id reused
                -- for a different signal is refused instead of swallowed as a duplicate. Rows from before this
                -- version have no fingerprint and keep deduplicating by id alone.

                ALTER TABLE signal_requests ADD COLUMN fingerprint TEXT;
                """#),
        SchemaMigration(
            name: "0004_workflow_task_claims",
            sql: #"""
                -- Keel schema, version 4 (same number and meaning as SQLite's 0004): how many times in a row
                -- a run's workflow task was claimed without a commit or a block. A task whose claimers keep
                -- losing their lease (its code or input crashes the worker process) is parked as blocked after a
                -- few claims, so it cannot take every worker down in turn.

                ALTER TABLE workflow_runs ADD COLUMN task_claims INTEGER NOT NULL DEFAULT 0;
                """#),
        SchemaMigration(
            name: "0005_task_queues",
            sql: #"""
                -- Keel schema, version 5 (same number and meaning as SQLite's 0005): task queues. A run's
                -- workflow tasks and each activity belong to a queue ('default' unless chosen); a worker claims
                -- only from the queues it serves. The claim indexes stay on the due time: claims filter the queue
                -- among due rows, which costs nothing while workers serve every queue that has work, and needs no
                -- second index written on every commit.

                ALTER TABLE workflow_runs ADD COLUMN task_queue TEXT NOT NULL DEFAULT 'default';
                ALTER TABLE activity_tasks ADD COLUMN task_queue TEXT NOT NULL DEFAULT 'default';
                """#),
        SchemaMigration(
            name: "0006_activity_cancellation",
            sql: #"""
                -- Keel schema, version 6 (same number and meaning as SQLite's 0006): workflow code cancelled the
                -- task awaiting an activity. The running attempt learns it at its next heartbeat; an attempt that
                -- is not running is cancelled by the commit that records the request.

                ALTER TABLE activity_tasks ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
                """#),
        SchemaMigration(
            name: "0007_continue_as_new",
            sql: #"""
                -- Keel schema, version 7 (same number and meaning as SQLite's 0007): continue-as-new. A run that
                -- continues as new closes as 'continuedAsNew' and names the next run of its workflow id, which
                -- names it back in previous_run_id.

                ALTER TABLE workflow_runs ADD COLUMN previous_run_id TEXT;
                CREATE INDEX workflow_runs_previous ON workflow_runs (previous_run_id)
                    WHERE previous_run_id IS NOT NULL;
                """#),
        SchemaMigration(
            name: "0008_child_workflows",
            sql: #"""
                -- Keel schema, version 8 (same number and meaning as SQLite's 0008): child workflows. A child's
                -- run names its parent's workflow and run, the parent's operation that started it, and what
                -- happens to it if the parent closes first (terminate, requestCancel, abandon). Runs continued
                -- from a child keep the link. Indexes: a run's open children (parent-close policy, worker show)
                -- and a workflow's children, newest first (worker list --parent).

                ALTER TABLE workflow_runs ADD COLUMN parent_workflow_id TEXT;
                ALTER TABLE workflow_runs ADD COLUMN parent_run_id TEXT;
                ALTER TABLE workflow_runs ADD COLUMN parent_seq INTEGER;
                ALTER TABLE workflow_runs ADD COLUMN parent_close_policy TEXT;
                CREATE INDEX workflow_runs_parent_run ON workflow_runs (parent_run_id) WHERE parent_run_id IS NOT NULL;
                CREATE INDEX workflow_runs_parent_workflow ON workflow_runs (parent_workflow_id, created_at, run_id)
                    WHERE parent_workflow_id IS NOT NULL;
                """#),
        SchemaMigration(
            name: "0009_stage_search_attributes",
            sql: #"""
                -- Keel schema, version 9 (same number and meaning as SQLite's 0009): a run's stage and its
                -- typed search attributes, set by its code and listed by. One attribute row per value (a
                -- keyword list has one row per keyword): text values (strings, keywords) in text_value,
                -- numbers (ints, doubles, bools as 0/1, dates as seconds since 1970) in number_value. Each
                -- row repeats its run's created_at, so a filtered listing reads the matching rows newest
                -- first from one index and pages by (created_at, run_id) without sorting.

                ALTER TABLE workflow_runs ADD COLUMN stage TEXT;
                CREATE INDEX workflow_runs_stage_created ON workflow_runs (stage, created_at, run_id);

                CREATE TABLE run_search_attributes (
                    run_id        TEXT NOT NULL,
                    name          TEXT NOT NULL,
                    kind          TEXT NOT NULL,
                    text_value    TEXT,
                    number_value  DOUBLE PRECISION,
                    created_at    DOUBLE PRECISION NOT NULL
                );
                CREATE INDEX run_search_attributes_run ON run_search_attributes (run_id, name);
                CREATE INDEX run_search_attributes_text
                    ON run_search_attributes (name, text_value, created_at, run_id);
                CREATE INDEX run_search_attributes_number
                    ON run_search_attributes (name, number_value, created_at, run_id);
                """#),
        SchemaMigration(
            name: "0010_schedules",
            sql: #"""
                -- Keel schema, version 10 (same number and meaning as SQLite's 0010): cron schedules, fired by
                -- the workers. A tick starts its run in the transaction that advances next_fire_at, so each
                -- tick starts once whatever the number of workers; schedules_due finds the due ones.

                CREATE TABLE schedules (
                    schedule_id       TEXT PRIMARY KEY,
                    spec              TEXT NOT NULL,
                    time_zone         TEXT NOT NULL,
                    workflow_type     TEXT NOT NULL,
                    input             BYTEA NOT NULL,
                    task_queue        TEXT NOT NULL,
                    overlap_policy    TEXT NOT NULL,
                    catchup_window    DOUBLE PRECISION NOT NULL,
                    jitter            DOUBLE PRECISION NOT NULL,
                    note              TEXT,
                    paused            BOOLEAN NOT NULL DEFAULT FALSE,
                    pause_note        TEXT,
                    start_at          DOUBLE PRECISION,
                    end_at            DOUBLE PRECISION,
                    fired_count       INTEGER NOT NULL DEFAULT 0,
                    skipped_count     INTEGER NOT NULL DEFAULT 0,
                    missed_count      INTEGER NOT NULL DEFAULT 0,
                    last_fire_at      DOUBLE PRECISION,
                    next_fire_at      DOUBLE PRECISION,
                    last_workflow_id  TEXT,
                    buffered_tick_at  DOUBLE PRECISION,
                    created_at        DOUBLE PRECISION NOT NULL,
                    updated_at        DOUBLE PRECISION NOT NULL
                );
                CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE paused = FALSE;
                """#),
        SchemaMigration(
            name: "0011_schedule_runs",
            sql: #"""
                -- Keel schema, version 11 (same number and meaning as SQLite's 0011): the schedule that started a
                -- run, so that the commit closing it wakes the timer loop at once (a buffered tick starts
                -- when the run it waited for closes, not at the next tick).

                ALTER TABLE workflow_runs ADD COLUMN schedule_id TEXT;
                """#),
        SchemaMigration(
            name: "0012_outbound",
            sql: #"""
                -- Keel schema, version 12 (same number and meaning as SQLite's 0012): what the provider
                -- activities send. outbox holds one row per idempotency key, whatever the retries (shadow
                -- sends stop there; live ones also reach the provider); suppressions are checked right
                -- before every send; send_counts counts each sender's sends per day in its own time zone,
                -- in the transaction that records the send; outbound_controls holds the emergency stop.

                CREATE TABLE outbox (
                    idempotency_key      TEXT PRIMARY KEY,
                    channel              TEXT NOT NULL,
                    operation            TEXT NOT NULL,
                    sender               TEXT,
                    recipient            TEXT,
                    mode                 TEXT NOT NULL,
                    status               TEXT NOT NULL,
                    message              TEXT NOT NULL,
                    workflow_id          TEXT NOT NULL,
                    run_id               TEXT NOT NULL,
                    provider_message_id  TEXT,
                    detail               TEXT,
                    counted_day          TEXT,
                    attempts             INTEGER NOT NULL,
                    created_at           DOUBLE PRECISION NOT NULL,
                    updated_at           DOUBLE PRECISION NOT NULL,
                    sent_at              DOUBLE PRECISION
                );
                CREATE INDEX outbox_by_channel ON outbox (channel, created_at);
                CREATE INDEX outbox_by_run ON outbox (run_id, created_at);

                CREATE TABLE suppressions (
                    address     TEXT PRIMARY KEY,
                    reason      TEXT NOT NULL,
                    source      TEXT NOT NULL,
                    created_at  DOUBLE PRECISION NOT NULL
                );

                CREATE TABLE send_counts (
                    channel  TEXT NOT NULL,
                    sender   TEXT NOT NULL,
                    day      TEXT NOT NULL,
                    sent     INTEGER NOT NULL,
                    PRIMARY KEY (channel, sender, day)
                );

                CREATE TABLE outbound_controls (
                    name        TEXT PRIMARY KEY,
                    active      BOOLEAN NOT NULL DEFAULT FALSE,
                    reason      TEXT,
                    changed_by  TEXT,
                    changed_at  DOUBLE PRECISION NOT NULL
                );
                """#),
        SchemaMigration(
            name: "0013_cadences",
            sql: #"""
                -- Keel schema, version 13 (same number and meaning as SQLite's 0013): outreach cadences as
                -- data. Each registered version of a cadence document is kept; a running cadence read its
                -- version when it started (the document is in its history), so a new version changes
                -- only the cadences started after it.

                CREATE TABLE cadences (
                    cadence_id     TEXT NOT NULL,
                    version        INTEGER NOT NULL,
                    document       TEXT NOT NULL,
                    sha256         TEXT NOT NULL,
                    registered_at  DOUBLE PRECISION NOT NULL,
                    PRIMARY KEY (cadence_id, version)
                );
                """#),
        SchemaMigration(
            name: "0014_inbox_version",
            sql: #"""
                -- Keel schema, version 14 (same number and meaning as SQLite's 0014): a count of the
                -- events queued in a run's inbox, raised with each. A claimed task's commit checks it is
                -- still what the claim read, in the run's own UPDATE, instead of locking the row first.

                ALTER TABLE workflow_runs ADD COLUMN inbox_version BIGINT NOT NULL DEFAULT 0;
                """#),
        SchemaMigration(
            name: "0015_timer_owner",
            sql: #"""
                -- Keel schema, version 15 (same number and meaning as SQLite's 0015): the worker that
                -- keeps a timer's run in memory and fires the timer itself; the timer passes leave it to
                -- that worker for a moment past its time. NULL: the passes fire it when due.
                -- Also (PostgreSQL only) keel_required: a write sent as one statement outside a
                -- transaction block checks each of its required parts with it, and fails as a whole,
                -- with this message, when one changed no row.

                ALTER TABLE timers ADD COLUMN owner TEXT;
                CREATE INDEX timers_unowned_fire_at ON timers (fire_at) WHERE owner IS NULL;
                -- (Its body's statements share lines: a `;` at a line's end would end the migration's statement.)
                CREATE FUNCTION keel_required(changed BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
                BEGIN
                    IF changed = 0 THEN RAISE EXCEPTION 'keel: a required part of a write changed no row (the run moved on); nothing of the write stands, and Keel retries it the long way' USING ERRCODE = 'KL001'; END IF; RETURN changed; END
                $$;
                """#),
    ]
}
