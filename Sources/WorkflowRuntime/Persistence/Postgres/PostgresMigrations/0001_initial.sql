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
