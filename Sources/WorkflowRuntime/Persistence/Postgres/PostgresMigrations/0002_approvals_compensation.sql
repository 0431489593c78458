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
