-- Keel schema, version 1. Numbered migrations are never edited once landed; the PostgreSQL
-- migrations carry the same numbers.

-- One row per run. A run needs a workflow task while needs_task = 1; it is claimable once
-- task_ready_at has passed (claiming moves task_ready_at to the lease expiry).
CREATE TABLE workflow_runs (
    run_id            TEXT PRIMARY KEY,
    workflow_id       TEXT NOT NULL,
    workflow_type     TEXT NOT NULL,
    status            TEXT NOT NULL,
    input             BLOB NOT NULL,
    result            BLOB,
    failure           TEXT,
    status_reason     TEXT,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    closed_at         REAL,
    history_length    INTEGER NOT NULL,
    task_version      INTEGER NOT NULL DEFAULT 0,
    needs_task        INTEGER NOT NULL DEFAULT 0,
    task_ready_at     REAL,
    lease_owner       TEXT,
    lease_token       INTEGER,
    lease_expires_at  REAL
);
-- Workflow ids are unique among open runs.
CREATE UNIQUE INDEX workflow_runs_open_workflow_id ON workflow_runs (workflow_id)
    WHERE status IN ('running', 'blocked');
CREATE INDEX workflow_runs_workflow_id ON workflow_runs (workflow_id, created_at);
-- Claiming workflow tasks.
CREATE INDEX workflow_runs_ready ON workflow_runs (task_ready_at)
    WHERE needs_task = 1 AND status = 'running';
-- Listing (newest first, keyset paging), unfiltered and by each CLI filter.
CREATE INDEX workflow_runs_created ON workflow_runs (created_at, run_id);
CREATE INDEX workflow_runs_status_created ON workflow_runs (status, created_at, run_id);
CREATE INDEX workflow_runs_type_created ON workflow_runs (workflow_type, created_at, run_id);

-- Append-only history, written by workflow tasks (plus start and terminate).
CREATE TABLE history_events (
    run_id     TEXT NOT NULL,
    event_id   INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    timestamp  REAL NOT NULL,
    body       BLOB NOT NULL,
    PRIMARY KEY (run_id, event_id)
) WITHOUT ROWID;

-- Events that happened to a run and wait for its next workflow task.
CREATE TABLE run_inbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id     TEXT NOT NULL,
    kind       TEXT NOT NULL,
    timestamp  REAL NOT NULL,
    body       BLOB NOT NULL
);
CREATE INDEX run_inbox_run ON run_inbox (run_id, id);

-- Signal request ids already accepted by a run (deduplication).
CREATE TABLE signal_requests (
    run_id       TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    received_at  REAL NOT NULL,
    PRIMARY KEY (run_id, request_id)
) WITHOUT ROWID;

-- Activity attempts to run. Claimable once visible_at has passed: for a leased attempt
-- visible_at is its lease expiry, for a failed one the time of the next attempt.
CREATE TABLE activity_tasks (
    id                INTEGER PRIMARY KEY,
    run_id            TEXT NOT NULL,
    seq               INTEGER NOT NULL,
    workflow_id       TEXT NOT NULL,
    activity_name     TEXT NOT NULL,
    input             BLOB NOT NULL,
    idempotency_key   TEXT NOT NULL,
    options           BLOB NOT NULL,
    start_to_close    REAL,
    attempt           INTEGER NOT NULL,
    scheduled_at      REAL NOT NULL,
    visible_at        REAL NOT NULL,
    lease_owner       TEXT,
    lease_token       INTEGER,
    last_error        TEXT,
    heartbeat_details BLOB,
    UNIQUE (run_id, seq)
);
CREATE INDEX activity_tasks_visible ON activity_tasks (visible_at);

-- Durable timers; a timer fires once (its row is deleted as it fires).
CREATE TABLE timers (
    id       INTEGER PRIMARY KEY,
    run_id   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    fire_at  REAL NOT NULL,
    UNIQUE (run_id, seq)
);
CREATE INDEX timers_fire_at ON timers (fire_at);
