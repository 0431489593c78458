-- Keel schema, version 3 (same number and meaning as SQLite's 0003): a signal's request id
-- binds to the signal it first carried (SHA-256 of its name and payload), so a request id reused
-- for a different signal is refused instead of swallowed as a duplicate. Rows from before this
-- version have no fingerprint and keep deduplicating by id alone.

ALTER TABLE signal_requests ADD COLUMN fingerprint TEXT;
