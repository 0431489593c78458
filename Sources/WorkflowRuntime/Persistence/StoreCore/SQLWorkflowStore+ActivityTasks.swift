import Foundation

// Activity attempts: claims under a lease, outcomes, heartbeats, and the fast path that commits an
// outcome together with the workflow task it lets run.
extension SQLWorkflowStore {
    package func claimActivityTasks(
        owner: String, limit: Int, defaultLease: Duration, now: Date,
        taskQueues: [String]
    ) async throws -> [ActivityTask] {
        let token = Int64.random(in: 1...Int64.max)
        let binds: [SQLValue] =
            [.text(owner), .int(token), now.sqlValue, .double(defaultLease.seconds), now.sqlValue]
            + taskQueues.map(SQLValue.text) + [.int(Int64(limit))]
        return try await driver.write { [self] connection, notifications in
            let rows = try await connection.query(
                """
                UPDATE activity_tasks SET lease_owner = ?, lease_token = ?, attempt = attempt + 1,
                    visible_at = ? + COALESCE(start_to_close, ?)
                WHERE id IN (SELECT id FROM activity_tasks
                             WHERE visible_at <= ? AND task_queue IN (\(SQLDialect.placeholders(taskQueues.count)))
                             ORDER BY visible_at LIMIT ?\(dialect.skipLocked))
                RETURNING run_id, workflow_id, seq, activity_name, input, idempotency_key, options, attempt,
                          scheduled_at, heartbeat_details, cancel_requested
                """, binds)
            var tasks: [ActivityTask] = []
            for row in rows {
                let (runID, seq, attempt): (String, Int, Int) = (try row.get(0), try row.get(2), try row.get(7))
                if try row.get(10, as: Bool.self) {
                    // Its code cancelled it while its last attempt was lost with its worker: it ends here.
                    let report = ActivityReport(
                        runID: runID, seq: seq, leaseToken: token, attempt: attempt, outcome: .cancelled, now: now)
                    _ = try await recordActivityOutcome(
                        connection, report, body: try EventCodec.encode(report.event!), notifications: &notifications)
                    continue
                }
                let options: ActivityOptions
                do {
                    options = try EventCodec.decode(attribute: ActivityOptions.self, from: try row.get(6))
                } catch {
                    // One undecodable row must not stop every claim: its attempt fails for good, naming why.
                    let report = ActivityReport.undecodableRow(
                        runID: runID, seq: seq, leaseToken: token, attempt: attempt,
                        error: error, now: now)
                    _ = try await recordActivityOutcome(
                        connection, report, body: try EventCodec.encode(report.event!),
                        notifications: &notifications)
                    continue
                }
                tasks.append(
                    ActivityTask(
                        runID: runID, workflowID: try row.get(1), seq: seq, activityName: try row.get(3),
                        input: Payload(data: try row.get(4)), idempotencyKey: try row.get(5), options: options,
                        attempt: attempt,
                        scheduledAt: try row.get(8), leaseToken: token,
                        heartbeatDetails: try row.get(9, as: Data?.self).map(Payload.init(data:))))
            }
            return tasks
        }
    }

    package func reportActivity(_ report: ActivityReport) async throws -> Bool {
        let body = try report.event.map(EventCodec.encode)
        return try await driver.write { [self] connection, notifications in
            try await recordActivityOutcome(connection, report, body: body, notifications: &notifications)
        }
    }

    package func reportActivityAndContinue(
        _ report: ActivityReport,
        continuation: WorkflowTaskCompletion
    ) async throws -> FastPathResult {
        let body = try report.event.map(EventCodec.encode)
        let prepared = try PreparedCompletion(continuation)
        if let version = try await commitCheckingFenceInWrites(prepared, taking: .activity(report)) {
            return .continued(taskVersion: version)
        }
        // Out of step, or the lease was lost: the fenced path below tells which.
        do {
            return try await driver.write { [self] connection, notifications in
                try await lockRelatedRuns(connection, prepared)
                guard let run = try await lockRun(connection, runID: report.runID),
                    run.admitsFastPath(continuation, now: report.now.timeIntervalSince1970)
                else {
                    let recorded = try await recordActivityOutcome(
                        connection, report, body: body, notifications: &notifications)
                    return recorded ? .outcomeOnly : .stale
                }
                // The attempt's row goes with the commit's writes (one round trip on PostgreSQL);
                // if its lease was lost, nothing of the commit stands.
                return .continued(
                    taskVersion: try await commit(
                        connection, prepared, run: run, taking: .activity(report),
                        notifications: &notifications))
            }
        } catch is CommitRequirementUnmet {
            return .stale
        }
    }

    package func heartbeat(runID: String, seq: Int, leaseToken: Int64, details: Payload?, leaseUntil: Date) async throws
        -> HeartbeatResponse
    {
        try await driver.write { connection, _ in
            let openRun = "EXISTS (SELECT 1 FROM workflow_runs WHERE run_id = ? AND status IN \(RunStatus.openSQLList))"
            let row = try await connection.row(
                """
                UPDATE activity_tasks SET visible_at = ?, heartbeat_details = COALESCE(?, heartbeat_details)
                WHERE run_id = ? AND seq = ? AND lease_token = ? AND \(openRun)
                RETURNING cancel_requested
                """, leaseUntil, details?.data, runID, seq, leaseToken, runID)
            guard let row else {
                // A run that closed while this heartbeat held the row kept it (its close skips locked
                // rows): the row goes now.
                try await connection.execute(
                    "DELETE FROM activity_tasks WHERE run_id = ? AND seq = ? AND lease_token = ? AND NOT \(openRun)",
                    runID, seq, leaseToken, runID)
                return .leaseLost
            }
            return try row.get(0, as: Bool.self) ? .cancellationRequested : .leaseHeld
        }
    }

    /// Asks activity `seq`'s attempt to stop, for a commit that records its cancellation. One not
    /// running (waiting for its first attempt or a retry, or lost with its worker) ends at once.
    /// - Returns: whether its end was queued in the run's inbox (the run then needs another task).
    func requestActivityCancellation(
        _ connection: any SQLConnection, runID: String, seq: Int, now: Date,
        notifications: inout StoreNotifications
    ) async throws -> Bool {
        let idle = try await connection.changes(
            """
            DELETE FROM activity_tasks WHERE run_id = ? AND seq = ? AND (lease_token IS NULL OR visible_at <= ?)
            \(dialect.countingChanges)
            """, runID, seq, now)
        guard idle == 0 else {
            try await queueActivityCancelled(
                connection, runID: runID, seq: seq, now: now, notifications: &notifications)
            return true
        }
        try await connection.execute(
            "UPDATE activity_tasks SET cancel_requested = \(dialect.true) WHERE run_id = ? AND seq = ?", runID, seq)
        return false
    }

    /// Deletes the attempt's row if its lease is still held. - Returns: whether it was.
    func takeLeasedActivity(_ connection: any SQLConnection, _ report: ActivityReport) async throws -> Bool {
        let taking = takingLeasedActivity(report)
        return try await connection.changes(taking.sql, taking.binds) > 0
    }

    /// The statement of ``takeLeasedActivity(_:_:)``, counting the row it deletes; required when
    /// it goes with a commit's writes.
    func takingLeasedActivity(_ report: ActivityReport) -> SQLStatement {
        SQLStatement(
            "DELETE FROM activity_tasks WHERE run_id = ? AND seq = ? AND lease_token = ?\(dialect.countingChanges)",
            [.text(report.runID), .int(Int64(report.seq)), .int(report.leaseToken)], isRequired: true)
    }

    /// Records an attempt's outcome under its lease: a retry or a release makes the attempt due
    /// again, a final outcome goes to the run's inbox. - Returns: `false` if the lease was no longer held.
    func recordActivityOutcome(
        _ connection: any SQLConnection, _ report: ActivityReport, body: Data?,
        notifications: inout StoreNotifications
    ) async throws -> Bool {
        switch report.outcome {
        case .retry(let failure, let retryAt):
            let updated = try await connection.changes(
                """
                UPDATE activity_tasks SET lease_owner = NULL, lease_token = NULL, visible_at = ?, last_error = ?
                WHERE run_id = ? AND seq = ? AND lease_token = ?
                    AND cancel_requested = \(dialect.false)\(dialect.countingChanges)
                """, retryAt, failure.description, report.runID, report.seq, report.leaseToken)
            guard updated > 0 else {
                return try await endCancelledAttempt(connection, report, notifications: &notifications)
            }
            notifications.topics.insert(.activityTasks)
        case .released(let reason):
            let updated = try await connection.changes(
                """
                UPDATE activity_tasks SET lease_owner = NULL, lease_token = NULL, visible_at = ?, attempt = attempt - 1,
                    last_error = ?
                WHERE run_id = ? AND seq = ? AND lease_token = ?
                    AND cancel_requested = \(dialect.false)\(dialect.countingChanges)
                """, report.now, reason.description, report.runID, report.seq, report.leaseToken)
            guard updated > 0 else {
                return try await endCancelledAttempt(connection, report, notifications: &notifications)
            }
            notifications.topics.insert(.activityTasks)
        case .completed, .failed, .cancelled:
            guard try await takeLeasedActivity(connection, report), let event = report.event, let body else {
                return false
            }
            try await addToInbox(
                connection, runID: report.runID, kind: event, body: body, now: report.now,
                notifications: &notifications)
        }
        return true
    }

    /// An attempt that failed or was given back after its code cancelled it is not tried again: it
    /// ends as cancelled. - Returns: `false` if the lease was no longer held.
    private func endCancelledAttempt(
        _ connection: any SQLConnection, _ report: ActivityReport, notifications: inout StoreNotifications
    ) async throws -> Bool {
        let ended = try await connection.changes(
            """
            DELETE FROM activity_tasks WHERE run_id = ? AND seq = ? AND lease_token = ?
                AND cancel_requested = \(dialect.true)\(dialect.countingChanges)
            """, report.runID, report.seq, report.leaseToken)
        guard ended > 0 else { return false }
        try await queueActivityCancelled(
            connection, runID: report.runID, seq: report.seq, now: report.now, notifications: &notifications)
        return true
    }

    /// Queues `activityCancelled` for the run's next task.
    private func queueActivityCancelled(
        _ connection: any SQLConnection, runID: String, seq: Int, now: Date, notifications: inout StoreNotifications
    ) async throws {
        let kind = HistoryEvent.Kind.activityCancelled(seq: seq)
        try await addToInbox(
            connection, runID: runID, kind: kind, body: try EventCodec.encode(kind), now: now,
            notifications: &notifications)
    }
}
