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
            // Lock runs in one order, so concurrent firings cannot deadlock.
            for timer in due.sorted(by: { ($0.runID, $0.seq) < ($1.runID, $1.seq) }) {
                let kind: HistoryEvent.Kind?
                if timer.purpose == "approval" {
                    // The run's row before the approval's, in the order decisions and commits take them.
                    _ = try await lockRun(connection, runID: timer.runID)
                    kind = try await expireApproval(connection, runID: timer.runID, seq: timer.seq, now: now)
                } else {
                    kind = .timerFired(seq: timer.seq)
                }
                guard let kind else { continue }
                try await addToInbox(
                    connection, runID: timer.runID, kind: kind, body: try EventCodec.encode(kind), now: now,
                    notifications: &notifications)
            }
            return due.count
        }
    }

    package func nextWakeUp() async throws -> Date? {
        try await driver.read { [self] connection in
            try await connection.row(
                """
                SELECT MIN(t) FROM (
                    SELECT MIN(fire_at) AS t FROM timers
                    UNION ALL SELECT MIN(visible_at) FROM activity_tasks
                    UNION ALL SELECT MIN(task_ready_at) FROM workflow_runs WHERE needs_task = \(dialect.true)
                        AND status = 'running'
                    UNION ALL SELECT MIN(next_fire_at) FROM schedules WHERE paused = \(dialect.false)
                ) AS due
                """)?.get(0, as: Date?.self)
        }
    }
}
