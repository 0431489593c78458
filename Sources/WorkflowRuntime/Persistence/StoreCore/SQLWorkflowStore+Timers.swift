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
            // two approval deadlines go to their runs' inboxes together (firedTogether).
            var plain: [(runID: String, seq: Int)] = []
            for timer in due.sorted(by: { ($0.runID, $0.seq) < ($1.runID, $1.seq) }) {
                guard timer.purpose == "approval" else {
                    plain.append((timer.runID, timer.seq))
                    continue
                }
                try await firedTogether(plain, connection, now: now, notifications: &notifications)
                plain.removeAll()
                // The run's row before the approval's, in the order decisions and commits take them.
                _ = try await lockRun(connection, runID: timer.runID)
                guard let kind = try await expireApproval(connection, runID: timer.runID, seq: timer.seq, now: now)
                else { continue }
                try await addToInbox(
                    connection, runID: timer.runID, kind: kind, body: try EventCodec.encode(kind), now: now,
                    notifications: &notifications)
            }
            try await firedTogether(plain, connection, now: now, notifications: &notifications)
            return due.count
        }
    }

    /// Puts `timerFired` for each of `timers` (sorted by run and sequence) in its run's inbox,
    /// for the runs still open, as ``addToInbox(_:runID:kind:body:now:notifications:)`` does one
    /// by one, in three statements for up to ``timerChunk`` timers: the runs are locked in
    /// order, marked as needing a task, and the events inserted together.
    private func firedTogether(
        _ timers: [(runID: String, seq: Int)], _ connection: any SQLConnection, now: Date,
        notifications: inout StoreNotifications
    ) async throws {
        var start = 0
        while start < timers.count {
            let chunk = timers[start..<min(start + Self.timerChunk, timers.count)]
            start += chunk.count
            let runIDs = Array(Set(chunk.map(\.runID))).sorted()
            let runList = SQLDialect.placeholders(runIDs.count)
            let open = Set(
                try await connection.query(
                    """
                    SELECT run_id FROM workflow_runs WHERE run_id IN (\(runList)) AND status IN \(RunStatus.openSQLList)
                    ORDER BY run_id\(dialect.lockRows)
                    """, runIDs.map(SQLValue.text)
                ).map { try $0.get(0, as: String.self) })
            let fired = chunk.filter { open.contains($0.runID) }
            guard !fired.isEmpty else { continue }
            let openIDs = runIDs.filter(open.contains)
            try await connection.execute(
                """
                UPDATE workflow_runs
                SET task_ready_at = CASE WHEN needs_task = \(dialect.true) THEN task_ready_at ELSE ? END,
                    needs_task = \(dialect.true), updated_at = ?
                WHERE run_id IN (\(SQLDialect.placeholders(openIDs.count)))
                """, [now.sqlValue, now.sqlValue] + openIDs.map(SQLValue.text))
            var binds: [SQLValue] = []
            binds.reserveCapacity(fired.count * 4)
            for timer in fired {
                let kind = HistoryEvent.Kind.timerFired(seq: timer.seq)
                binds += [.text(timer.runID), .text(kind.name), now.sqlValue, .blob(try EventCodec.encode(kind))]
            }
            try await connection.execute(
                """
                INSERT INTO run_inbox (run_id, kind, timestamp, body)
                VALUES \(Array(repeating: "(?, ?, ?, ?)", count: fired.count).joined(separator: ", "))
                """, binds)
            notifications.topics.insert(.workflowTasks)
        }
    }

    /// Most timers ``firedTogether(_:_:now:notifications:)`` writes with one statement.
    private static var timerChunk: Int { 200 }

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
