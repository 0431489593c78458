import Foundation

// Timers (durable sleeps and approval deadlines) and the earliest time anything becomes due.
extension SQLWorkflowStore {
    package func fireDueTimers(now: Date, limit: Int) async throws -> Int {
        try await driver.write { [self] connection, notifications in
            // A worker's own timers are its to fire (fireOwnedTimers) until the grace has passed.
            let due = try await connection.query(
                """
                DELETE FROM timers WHERE id IN (
                    SELECT id FROM timers WHERE fire_at <= ? AND (owner IS NULL OR fire_at <= ?)
                    ORDER BY fire_at LIMIT ?\(dialect.skipLocked))
                RETURNING run_id, seq, purpose
                """, now, now.addingTimeInterval(-timerOwnerGrace), limit
            ).map(Self.firedTimer)
            try await queueFired(due, connection, now: now, notifications: &notifications)
            return due.count
        }
    }

    package func fireTimers(_ seqs: [Int], runID: String, now: Date) async throws -> Int {
        guard !seqs.isEmpty else { return 0 }
        return try await driver.write { [self] connection, notifications in
            let marks = Array(repeating: "?", count: seqs.count).joined(separator: ", ")
            let due = try await connection.query(
                "DELETE FROM timers WHERE run_id = ? AND seq IN (\(marks)) RETURNING run_id, seq, purpose",
                [.text(runID)] + seqs.map { .int(Int64($0)) }
            ).map(Self.firedTimer)
            try await queueFired(due, connection, now: now, notifications: &notifications)
            return due.count
        }
    }

    private static func firedTimer(_ row: SQLRow) throws -> (runID: String, seq: Int, purpose: String) {
        (runID: try row.get(0, as: String.self), seq: try row.get(1, as: Int.self), purpose: try row.get(2, as: String.self))
    }

    /// Queues the events of timers just deleted in their runs' inboxes: `timerFired`, or an
    /// approval's expiry.
    private func queueFired(
        _ due: [(runID: String, seq: Int, purpose: String)], _ connection: any SQLConnection, now: Date,
        notifications: inout StoreNotifications
    ) async throws {
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
    }

    package func fireTimersAndContinue(_ seqs: [Int], continuation: WorkflowTaskCompletion) async throws -> Int? {
        try await commitCheckingFenceInWrites(try PreparedCompletion(continuation), taking: .timers(seqs))
    }

    package func nextWakeUp(after: Date) async throws -> Date? {
        try await driver.read { [self] connection in
            try await connection.row(
                """
                SELECT MIN(t) FROM (
                    SELECT MIN(fire_at) AS t FROM timers WHERE owner IS NULL AND fire_at > ?
                    UNION ALL SELECT MIN(fire_at) + ? FROM timers WHERE owner IS NOT NULL AND fire_at > ?
                    UNION ALL SELECT MIN(visible_at) FROM activity_tasks WHERE visible_at > ?
                    UNION ALL SELECT MIN(task_ready_at) FROM \(dialect.runsNeedingTask) WHERE needs_task = \(dialect.true)
                        AND status = 'running' AND task_ready_at > ?
                    UNION ALL SELECT MIN(next_fire_at) FROM schedules WHERE paused = \(dialect.false)
                        AND next_fire_at > ?
                ) AS due
                """, after, timerOwnerGrace, after.addingTimeInterval(-timerOwnerGrace), after, after, after
            )?.get(0, as: Date?.self)
        }
    }
}
