import Foundation

// Timers (durable sleeps and approval deadlines) and the earliest time anything becomes due.
extension SQLWorkflowStore {
    package func fireDueTimers(now: Date, limit: Int) async throws -> Int {
        try await driver.write { [self] connection, notifications in
            let due = try await connection.query(
                """
                DELETE FROM timers WHERE id IN (
                    SELECT id FROM timers WHERE fire_at <= ? ORDER BY fire_at LIMIT ?\(dialect.skipLocked))
                RETURNING run_id, seq, purpose
                """, now, limit
            ).map {
                (
                    runID: try $0.get(0, as: String.self), seq: try $0.get(1, as: Int.self),
                    purpose: try $0.get(2, as: String.self)
                )
            }
            // Lock runs in one order, so concurrent firings cannot deadlock. Plain timers between
            // two approval deadlines go to their runs' inboxes together.
            var plain: [(runID: String, kind: HistoryEvent.Kind, body: Data)] = []
            for timer in due.sorted(by: { ($0.runID, $0.seq) < ($1.runID, $1.seq) }) {
                guard timer.purpose == "approval" else {
                    let kind = HistoryEvent.Kind.timerFired(seq: timer.seq)
                    plain.append((timer.runID, kind, try EventCodec.encode(kind)))
                    continue
                }
                try await addToInboxes(connection, plain, now: now, notifications: &notifications)
                plain.removeAll()
                // The run's row before the approval's, in the order decisions and commits take them.
                _ = try await lockRun(connection, runID: timer.runID)
                guard let kind = try await expireApproval(connection, runID: timer.runID, seq: timer.seq, now: now)
                else { continue }
                try await addToInbox(
                    connection, runID: timer.runID, kind: kind, body: try EventCodec.encode(kind), now: now,
                    notifications: &notifications)
            }
            try await addToInboxes(connection, plain, now: now, notifications: &notifications)
            return due.count
        }
    }

    package func nextWakeUp(after: Date) async throws -> Date? {
        try await driver.read { [self] connection in
            try await connection.row(
                """
                SELECT MIN(t) FROM (
                    SELECT MIN(fire_at) AS t FROM timers WHERE fire_at > ?
                    UNION ALL SELECT MIN(visible_at) FROM activity_tasks WHERE visible_at > ?
                    UNION ALL SELECT MIN(task_ready_at) FROM \(dialect.runsNeedingTask) WHERE needs_task = \(dialect.true)
                        AND status = 'running' AND task_ready_at > ?
                    UNION ALL SELECT MIN(next_fire_at) FROM schedules WHERE paused = \(dialect.false)
                        AND next_fire_at > ?
                ) AS due
                """, after, after, after, after)?.get(0, as: Date?.self)
        }
    }
}
