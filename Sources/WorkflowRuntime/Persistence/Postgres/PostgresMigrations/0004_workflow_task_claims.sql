-- Keel schema, version 4 (same number and meaning as SQLite's 0004): how many times in a row
-- a run's workflow task was claimed without a commit or a block. A task whose claimers keep
-- losing their lease (its code or input crashes the worker process) is parked as blocked after a
-- few claims, so it cannot take every worker down in turn.

ALTER TABLE workflow_runs ADD COLUMN task_claims INTEGER NOT NULL DEFAULT 0;
