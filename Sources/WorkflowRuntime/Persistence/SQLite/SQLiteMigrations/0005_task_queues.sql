-- Keel schema, version 5 (same number and meaning as PostgreSQL's 0005): task queues. A run's
-- workflow tasks and each activity belong to a queue ('default' unless chosen); a worker claims
-- only from the queues it serves. The claim indexes stay on the due time: claims filter the queue
-- among due rows, which costs nothing while workers serve every queue that has work, and needs no
-- second index written on every commit.

ALTER TABLE workflow_runs ADD COLUMN task_queue TEXT NOT NULL DEFAULT 'default';
ALTER TABLE activity_tasks ADD COLUMN task_queue TEXT NOT NULL DEFAULT 'default';
