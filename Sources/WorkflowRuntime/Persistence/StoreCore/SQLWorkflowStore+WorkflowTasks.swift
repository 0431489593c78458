import Foundation

// Workflow tasks: claims under a lease, and the fenced commit of what a task decided.
extension SQLWorkflowStore {
    /// Rows of one multi-row `INSERT`, well below either backend's limit on bound values.
    private static var insertBatch: Int { 200 }

    /// Most inbox events one workflow task takes: a burst of signals (thousands, while no worker
    /// ran) reaches the code over several tasks, so a run that continues as new every N signals
    /// keeps a history of about N events plus this, instead of taking the whole burst into one.
    package static var inboxBatch: Int { 200 }

    package func claimWorkflowTasks(
        owner: String, limit: Int, lease: Duration, now: Date, taskQueues: [String],
        cachedTaskVersion: @escaping @Sendable (String) -> Int?
    ) async throws -> [WorkflowTask] {
        let token = Int64.random(in: 1...Int64.max)
        let expiry = now.addingTimeInterval(lease.seconds)
        let binds: [SQLValue] =
            [.text(owner), .int(token), expiry.sqlValue, expiry.sqlValue, now.sqlValue]
            + taskQueues.map(SQLValue.text) + [.int(Int64(limit))]
        return try await driver.write { [self] connection, _ in
            let rows = try await connection.query(
                """
                UPDATE workflow_runs SET lease_owner = ?, lease_token = ?, lease_expires_at = ?, task_ready_at = ?,
                    task_claims = task_claims + 1
                WHERE run_id IN (SELECT run_id FROM \(dialect.runsNeedingTask)
                                 WHERE needs_task = \(dialect.true) AND status = 'running' AND task_ready_at <= ?
                                   AND task_queue IN (\(SQLDialect.placeholders(taskQueues.count)))
                                 ORDER BY task_ready_at LIMIT ?\(dialect.skipLocked))
                RETURNING run_id, workflow_id, workflow_type, task_version, task_claims, task_queue,
                    schedule_id IS NOT NULL, inbox_version
                """, binds)
            let inboxes = try await inboxRows(
                connection, runIDs: try rows.map { try $0.get(0, as: String.self) }, limit: Self.inboxBatch + 1)
            var tasks: [WorkflowTask] = []
            for row in rows {
                let runID: String = try row.get(0)
                let version: Int = try row.get(3)
                do {
                    let inbox = try (inboxes[runID] ?? []).map(Self.inboxEvent(from:))
                    let history =
                        cachedTaskVersion(runID) == version ? nil : try await history(connection, runID: runID)
                    tasks.append(
                        WorkflowTask(
                            runID: runID, workflowID: try row.get(1), workflowType: try row.get(2),
                            leaseToken: token, taskVersion: version, history: history,
                            inbox: Array(inbox.prefix(Self.inboxBatch)), claims: try row.get(4),
                            inboxTruncated: inbox.count > Self.inboxBatch,
                            constants: RunConstants(taskQueue: try row.get(5), startedBySchedule: try row.get(6)),
                            inboxVersion: try row.get(7)))
                } catch let error as KeelError where error.code == .storage {
                    // (Decoding's errors: database errors end the claim.)
                    // One undecodable row must not stop every claim: park its run, go on with the others.
                    try await park(
                        connection, runID: runID, leaseToken: nil,
                        reason: undecodableHistoryReason(runID: runID, error: error), now: now)
                }
            }
            return tasks
        }
    }

    package func completeWorkflowTask(_ completion: WorkflowTaskCompletion) async throws -> WorkflowTaskCommitResult {
        let prepared = try PreparedCompletion(completion)
        if let version = try await commitCheckingFenceInWrites(prepared) {
            return .committed(taskVersion: version)
        }
        // The lease was lost or an event came since the claim: the paths below read the row.
        do {
            return try await completeWorkflowTask(prepared, checkingInboxFirst: false)
        } catch is CommitRequirementUnmet {
            // An event came before the close: checked first, it refuses the close.
            return try await completeWorkflowTask(prepared, checkingInboxFirst: true)
        }
    }

    /// Commits what a worker that knows the run (``WorkflowTaskCompletion/knownRun``) sends, its
    /// fence checked by its own writes (``writeFence(_:run:)``) instead of a locking read first.
    /// - Parameter taken: the fast path's finished attempt or fired timers.
    /// - Returns: the new task version; `nil` when nothing was written — the worker does not know
    ///   the run, the task fails a compensation (which changes the run's status before those
    ///   writes), or the fence (or the attempt's lease) did not hold — and the caller reads the row.
    func commitCheckingFenceInWrites(_ prepared: PreparedCompletion, taking taken: TakenWork? = nil)
        async throws -> Int?
    {
        let completion = prepared.completion
        let claimed = completion.leaseToken != nil
        guard let known = completion.knownRun, !claimed || completion.claimedInboxVersion != nil,
            prepared.plan.compensationFailure == nil
        else { return nil }
        let fence = RunFence(
            status: .running, taskVersion: completion.expectedTaskVersion, historyLength: known.historyLength,
            leaseToken: completion.leaseToken, leaseExpiresAt: nil, hasInbox: claimed,
            startedBySchedule: known.constants.startedBySchedule, taskQueue: known.constants.taskQueue)
        do {
            return try await writeComposed { [self] connection, notifications in
                try await lockRelatedRuns(connection, prepared)
                return try await commit(
                    connection, prepared, run: fence, checksFenceInWrites: true, closesOnlyOverSeenInbox: true,
                    taking: taken, notifications: &notifications)
            }
        } catch is CommitRequirementUnmet {
            return nil
        }
    }

    /// - Parameter checkingInboxFirst: whether a close looks for unseen inbox events with a
    ///   statement of its own, and refuses; otherwise the close's writes check, and throw
    ///   ``CommitRequirementUnmet`` (one statement fewer when, as nearly always, none waits).
    private func completeWorkflowTask(_ prepared: PreparedCompletion, checkingInboxFirst: Bool) async throws
        -> WorkflowTaskCommitResult
    {
        let completion = prepared.completion
        return try await driver.write { [self] connection, notifications in
            try await lockRelatedRuns(connection, prepared)
            guard let run = try await lockRun(connection, runID: completion.runID), run.admits(completion) else {
                // The holder of an older lease reported back: it was slow, not lost, so its claim
                // does not count toward the limit on claims that never finish (a crash loop).
                if completion.leaseToken != nil {
                    try await connection.execute(
                        "UPDATE workflow_runs SET task_claims = task_claims - 1 WHERE run_id = ? AND task_claims > 1",
                        completion.runID)
                }
                return .rejected(
                    reason: "the workflow task's lease was lost (another worker took the run over, or it closed)")
            }
            // A continue-as-new is not refused: what waits unseen moves to the next run (startContinuedRun).
            if checkingInboxFirst, prepared.plan.closing != nil, prepared.plan.continuation == nil, run.hasInbox,
                try await hasInbox(connection, runID: completion.runID, after: completion.consumedInboxThrough)
            {
                // Refuse to close the run over an event it has not seen; release the lease so it runs again.
                try await connection.execute(
                    """
                    UPDATE workflow_runs SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                        task_claims = 0,
                        task_ready_at = ?
                    WHERE run_id = ?
                    """, completion.now, completion.runID)
                notifications.topics.insert(.workflowTasks)
                return .rejected(reason: "an event arrived while the task was closing the run")
            }
            return .committed(
                taskVersion: try await commit(
                    connection, prepared, run: run, closesOnlyOverSeenInbox: !checkingInboxFirst,
                    notifications: &notifications))
        }
    }

    package func releaseWorkflowTask(runID: String, leaseToken: Int64, now: Date) async throws {
        try await driver.write { connection, notifications in
            let released = try await connection.changes(
                """
                UPDATE workflow_runs SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                    task_ready_at = ?, task_claims = task_claims - 1
                WHERE run_id = ? AND lease_token = ? AND status = 'running'
                """, now, runID, leaseToken)
            if released > 0 {
                notifications.topics.insert(.workflowTasks)
            } else {
                // Another worker holds it now (its own claim counts), or the commit went through after all.
                try await connection.execute(
                    "UPDATE workflow_runs SET task_claims = task_claims - 1 WHERE run_id = ? AND task_claims > 1",
                    runID)
            }
        }
    }

    /// Appends the task's events and writes the rows they imply (``CommitPlan``); the caller has
    /// checked the fence. - Returns: the new task version.
    ///
    /// The statements that read, or whose effect another statement depends on, run first; the
    /// rest — the events, this run's row, its new activities and timers, its consumed inbox, and on
    /// a close its pending work — touch rows no other of them touches, and go to the database
    /// together (``SQLConnection/executeTogether(_:)``: one round trip on PostgreSQL).
    /// - Parameters:
    ///   - run: the fence as read under the run's lock, or as the fast path's worker knows it
    ///     (`checksFenceInWrites`).
    ///   - checksFenceInWrites: instead of the caller locking the row and checking the fence
    ///     first, this run's row is written first of those writes only where it is still as `run`
    ///     says (``writeFence(_:run:)``); the commit stands only if it was.
    ///   - closesOnlyOverSeenInbox: a close (without a continuation) stands only if no event
    ///     waits in the run's inbox beyond the ones the task took; the caller, holding the row's
    ///     lock, has not checked.
    ///   - insertingRun: an eager start whose first task ``CommitPlan/writesOnlyItsRun``: the run's
    ///     row is inserted with those writes, as the task leaves it, instead of updated (`run` is
    ///     ``RunFence/started(taskQueue:)``); the commit stands only if the id had no open run.
    ///   - taken: the fast path's attempt or timers, whose rows go with those writes and must still
    ///     be there (the attempt held under its lease) for the commit to stand; a close leaves
    ///     those rows to it.
    /// - Throws: ``CommitRequirementUnmet`` when the lease was lost, the fence checked in the
    ///   writes did not hold or an unseen event waits; the caller's transaction then rolls back.
    func commit(
        _ connection: any SQLConnection, _ prepared: PreparedCompletion, run: RunFence,
        checksFenceInWrites: Bool = false, closesOnlyOverSeenInbox: Bool = false,
        insertingRun: StartWorkflowRequest? = nil, taking taken: TakenWork? = nil,
        notifications: inout StoreNotifications
    ) async throws -> Int {
        let completion = prepared.completion
        let plan = prepared.plan
        // (Callers check; a first task that does more is committed after a plain insert of the run.)
        guard insertingRun == nil || plan.writesOnlyItsRun else { throw CommitRequirementUnmet() }
        let runID = completion.runID
        let newVersion = run.taskVersion + 1
        let historyLength = run.historyLength + completion.events.count
        // What this run's row must still be for the commit to stand, checked by its UPDATE.
        var requirements: (sql: String, binds: [SQLValue]) =
            checksFenceInWrites ? writeFence(completion, run: run) : ("", [])
        if closesOnlyOverSeenInbox, plan.closing != nil, plan.continuation == nil, run.hasInbox {
            // The caller holds the row's lock, so this statement sees every event queued before.
            requirements.sql +=
                " AND NOT EXISTS (SELECT 1 FROM run_inbox WHERE run_inbox.run_id = workflow_runs.run_id AND id > ?)"
            requirements.binds.append(.int(completion.consumedInboxThrough ?? 0))
        }
        // This run's row: with requirements, first of the writes, and required.
        func writeRun(_ sql: String, _ values: any SQLBindable...) -> SQLStatement {
            let binds = values.map(\.sqlValue)
            guard !requirements.sql.isEmpty else { return SQLStatement(sql, binds) }
            return SQLStatement(
                sql + requirements.sql + dialect.countingChanges, binds + requirements.binds, isRequired: true)
        }
        // Other runs first: signals and cancellations to them, child starts.
        let queuedOutcomes = try await deliverExternalRequests(
            connection, plan, sender: (runID, completion.workflowID), queuesOutcomes: plan.closing == nil,
            now: completion.now, notifications: &notifications)
        let queuedStarts = try await startChildren(
            connection, plan, parent: ParentWorkflowInfo(workflowID: completion.workflowID, runID: runID),
            queuesOutcomes: plan.closing == nil, now: completion.now, notifications: &notifications)
        // Before a continuation copies them to the next run.
        try await writeSearchAttributes(connection, plan.searchAttributes, runID: runID)
        // Required statements go first: the run's row (added below) and the taken work.
        var writes =
            (taken.map { takingStatements($0, runID: runID) } ?? []) + eventInserts(prepared, after: run.historyLength)
        // A close without a continuation empties the whole inbox (pendingWorkDeletions), the events
        // taken included; a continuation must not carry the taken ones to the next run.
        let closesInbox = plan.closing != nil && plan.continuation == nil
        if let consumed = completion.consumedInboxThrough, run.hasInbox, !closesInbox {
            writes.append(SQLStatement("DELETE FROM run_inbox WHERE run_id = ? AND id <= ?", runID, consumed))
        }
        if let closing = plan.closing {
            if plan.withdrawsApprovals { try await withdrawApprovals(connection, runID: runID, now: completion.now) }
            writes.insert(
                writeRun(
                    """
                    UPDATE workflow_runs SET status = ?, result = ?, failure = ?, status_reason = ?, closed_at = ?,
                        updated_at = ?,
                        history_length = ?, task_version = ?, needs_task = \(dialect.false), task_ready_at = NULL,
                        lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0,
                        stage = COALESCE(?, stage)
                    WHERE run_id = ?
                    """, closing.status.rawValue, closing.result?.data, prepared.closingFailure, closing.reason,
                    completion.now, completion.now, historyLength, newVersion, plan.stage, runID), at: 0)
            if let continuation = plan.continuation {
                // It copies the closed run's row (its stage, as this close leaves it) and its inbox.
                try await connection.executeTogether(writes)
                writes = []
                try await startContinuedRun(
                    connection, continuation, after: runID, now: completion.now, notifications: &notifications)
            }
            writes += pendingWorkDeletions(
                runID: runID, inboxMayHoldEvents: run.hasInbox, sparing: taken)
            try await connection.executeTogether(writes)
            if plan.continuation == nil, completion.parent != nil {
                try await notifyParent(
                    connection, ofClosedRun: runID, closing, now: completion.now, notifications: &notifications)
            }
            if completion.hasChildren {
                try await applyParentClosePolicy(
                    connection, closedRun: runID, now: completion.now, notifications: &notifications)
            }
            // A tick buffered behind this run (overlap policy bufferOne) starts on the pass this wakes.
            if run.startedBySchedule { notifications.topics.insert(.timers) }
            notifications.closedRuns.append(runID)
            if closing.status == .completed, let result = closing.result { notifications.results[runID] = result }
            return newVersion
        }
        var endedActivities = false
        for seq in plan.cancelledActivities {
            if try await requestActivityCancellation(
                connection, runID: runID, seq: seq, now: completion.now, notifications: &notifications)
            {
                endedActivities = true
            }
        }
        if !plan.approvals.isEmpty {
            try await insertApprovals(connection, plan, runID: runID)
            notifications.topics.insert(.timers)
        }
        if plan.withdrawsApprovals {
            try await withdrawApprovals(connection, runID: runID, now: completion.now)
        }
        if let reason = plan.compensationFailure {
            // Its own statement: setting the indexed status column on every commit costs index writes.
            try await connection.execute(
                "UPDATE workflow_runs SET status = 'compensationFailed', status_reason = ? WHERE run_id = ?",
                reason, runID)
        }
        var pending = queuedOutcomes || queuedStarts || endedActivities
        if checksFenceInWrites {
            // No event came since the claim (or since the fast path's last commit).
            pending = pending || completion.leavesInboxEvents
        } else if !pending, run.hasInbox {
            pending = try await hasInbox(connection, runID: runID, after: completion.consumedInboxThrough)
        }
        for activity in plan.activities {
            let lease = completion.eagerLeases[activity.seq]
            // The column start_to_close holds the attempt lease (ActivityOptions.attemptLease).
            writes.append(
                SQLStatement(
                    """
                    INSERT INTO activity_tasks (run_id, seq, workflow_id, activity_name, input, idempotency_key,
                                                options, start_to_close, attempt, scheduled_at, visible_at,
                                                lease_owner, lease_token, task_queue)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, runID, activity.seq, completion.workflowID, activity.name, activity.input.data,
                    activity.idempotencyKey, prepared.encodedOptions[activity.seq] ?? Data(),
                    activity.options.attemptLease?.seconds, lease == nil ? 0 : 1, activity.scheduledAt,
                    lease?.expiresAt ?? completion.now, lease?.owner, lease?.token,
                    activity.options.taskQueue ?? run.taskQueue))
            if lease == nil { notifications.topics.insert(.activityTasks) }
        }
        // A timer started and cancelled by this one task is neither inserted nor deleted, so the
        // inserts and deletes touch different rows.
        let cancelledTimers = Set(plan.cancelledTimers)
        let startedTimers = Set(plan.timers.map(\.seq))
        for timer in plan.timers where !cancelledTimers.contains(timer.seq) {
            writes.append(
                SQLStatement(
                    "INSERT INTO timers (run_id, seq, fire_at, owner) VALUES (?, ?, ?, ?)", runID, timer.seq,
                    timer.fireAt, completion.timerOwner))
            notifications.topics.insert(.timers)
        }
        for seq in plan.cancelledTimers where !startedTimers.contains(seq) {
            writes.append(SQLStatement("DELETE FROM timers WHERE run_id = ? AND seq = ?", runID, seq))
        }
        if let start = insertingRun {
            writes.insert(
                runInsert(
                    start, historyLength: historyLength, taskVersion: newVersion, needsTask: pending, stage: plan.stage),
                at: 0)
            try await connection.executeTogether(writes)
            if pending { notifications.topics.insert(.workflowTasks) }
            return newVersion
        }
        writes.insert(
            writeRun(
                """
                UPDATE workflow_runs SET history_length = ?, task_version = ?, updated_at = ?, needs_task = ?,
                    task_ready_at = ?,
                    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0,
                    stage = COALESCE(?, stage)
                WHERE run_id = ?
                """, historyLength, newVersion, completion.now, pending, pending ? completion.now : nil, plan.stage,
                runID), at: 0)
        try await connection.executeTogether(writes)
        if pending { notifications.topics.insert(.workflowTasks) }
        return newVersion
    }

    /// The inserts of the task's events into the run's history, numbered after `historyLength`,
    /// as multi-row inserts. The started event of an eager start (``PreparedCompletion/startedEvent``)
    /// goes first, as event `historyLength`.
    private func eventInserts(_ prepared: PreparedCompletion, after historyLength: Int) -> [SQLStatement] {
        let events = prepared.completion.events
        var inserts: [SQLStatement] = []
        var start = 0
        var leading = prepared.startedEvent
        while start < events.count || leading != nil {
            let end = min(start + Self.insertBatch, events.count)
            var binds: [SQLValue] = []
            binds.reserveCapacity((end - start + 1) * 5)
            if let started = leading {
                // The run's first event, in the first insert: the run was inserted by this transaction.
                binds += [
                    .text(prepared.completion.runID), .int(Int64(historyLength)),
                    .text("workflowStarted"), started.timestamp.sqlValue, .blob(started.body),
                ]
            }
            for index in start..<end {
                binds += [
                    .text(prepared.completion.runID), .int(Int64(historyLength + index + 1)),
                    .text(events[index].kind.name),
                    events[index].timestamp.sqlValue, .blob(prepared.bodies[index]),
                ]
            }
            let rows = Array(repeating: "(?, ?, ?, ?, ?)", count: binds.count / 5).joined(separator: ", ")
            inserts.append(
                SQLStatement(
                    "INSERT INTO history_events (run_id, event_id, kind, timestamp, body) VALUES \(rows)", binds))
            start = end
            leading = nil
        }
        return inserts
    }

    /// Starts the run that `previousRunID` (closed by this transaction) continues as: same
    /// workflow id, type and task queue, the new input. Its inbox gets the carried signals, then
    /// the signals and cancellation requests still waiting in the previous run's inbox (its task
    /// did not take them: they came after its claim, or beyond ``inboxBatch``), in arrival order;
    /// the request ids the previous run accepted stay accepted, so a retried signal is not counted twice.
    private func startContinuedRun(
        _ connection: any SQLConnection, _ continuation: CommitPlan.Continuation, after previousRunID: String,
        now: Date, notifications: inout StoreNotifications
    ) async throws {
        guard
            let previous = try await connection.row(
                """
                SELECT workflow_id, workflow_type, parent_workflow_id, parent_run_id FROM workflow_runs WHERE run_id = ?
                """,
                previousRunID)
        else { throw KeelError(.storage, "run \(previousRunID) vanished while it continued as new") }
        let workflowID: String = try previous.get(0)
        let parent = try previous.get(2, as: String?.self).map {
            ParentWorkflowInfo(workflowID: $0, runID: try previous.get(3))
        }
        let started = try EventCodec.encode(
            .workflowStarted(
                workflowType: try previous.get(1), workflowID: workflowID, input: continuation.input, parent: parent))
        try await connection.execute(
            """
            INSERT INTO workflow_runs (run_id, workflow_id, workflow_type, status, input, created_at, updated_at,
                                       history_length, needs_task, task_ready_at, task_queue, previous_run_id,
                                       parent_workflow_id, parent_run_id, parent_seq, parent_close_policy, stage,
                                       schedule_id)
            SELECT ?, workflow_id, workflow_type, 'running', ?, ?, ?, 1, \(dialect.true), ?, task_queue, run_id,
                   parent_workflow_id, parent_run_id, parent_seq, parent_close_policy, stage, schedule_id
            FROM workflow_runs WHERE run_id = ?
            """, continuation.runID, continuation.input.data, now, now, now, previousRunID)
        try await connection.execute(
            """
            INSERT INTO run_search_attributes (run_id, name, kind, text_value, number_value, created_at)
            SELECT ?, name, kind, text_value, number_value, ? FROM run_search_attributes WHERE run_id = ?
            """, continuation.runID, now, previousRunID)
        try await connection.execute(
            """
            INSERT INTO history_events (run_id, event_id, kind, timestamp, body) VALUES (?, 1, 'workflowStarted', ?, ?)
            """, continuation.runID, now, started)
        try await connection.execute(
            """
            INSERT INTO signal_requests (run_id, request_id, received_at, fingerprint)
            SELECT ?, request_id, received_at, fingerprint FROM signal_requests WHERE run_id = ?
            """, continuation.runID, previousRunID)
        for signal in continuation.signals {
            let kind = HistoryEvent.Kind.signalReceived(
                name: signal.name, payload: signal.payload, requestID: signal.requestID)
            try await connection.execute(
                "INSERT INTO run_inbox (run_id, kind, timestamp, body) VALUES (?, ?, ?, ?)",
                continuation.runID, kind.name, now, try EventCodec.encode(kind))
        }
        try await connection.execute(
            """
            INSERT INTO run_inbox (run_id, kind, timestamp, body)
            SELECT ?, kind, timestamp, body FROM run_inbox
            WHERE run_id = ? AND kind IN ('signalReceived', 'cancelRequested') ORDER BY id
            """, continuation.runID, previousRunID)
        notifications.topics.insert(.workflowTasks)
    }

    /// Replaces the named search attributes of a run (an empty keyword list removes one); each
    /// row carries the run's creation time for ordered listing.
    func writeSearchAttributes(
        _ connection: any SQLConnection, _ attributes: [String: SearchAttributeValue], runID: String
    ) async throws {
        guard !attributes.isEmpty else { return }
        let names = attributes.keys.sorted()
        try await connection.execute(
            "DELETE FROM run_search_attributes WHERE run_id = ? AND name IN (\(SQLDialect.placeholders(names.count)))",
            [.text(runID)] + names.map(SQLValue.text))
        let rows = names.flatMap { name in attributes[name]!.indexed.map { (name, attributes[name]!.kind, $0) } }
        guard !rows.isEmpty,
            let createdAt = try await connection.row("SELECT created_at FROM workflow_runs WHERE run_id = ?", runID)?
                .get(0, as: Date.self)
        else { return }
        try await connection.execute(
            """
            INSERT INTO run_search_attributes (run_id, name, kind, text_value, number_value, created_at)
            VALUES \(Array(repeating: "(?, ?, ?, ?, ?, ?)", count: rows.count).joined(separator: ", "))
            """,
            rows.flatMap { name, kind, value -> [SQLValue] in
                [
                    .text(runID), .text(name), .text(kind), value.text.sqlValue, value.number.sqlValue,
                    createdAt.sqlValue,
                ]
            })
    }
}
