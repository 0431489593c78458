import Foundation

/// The one implementation of ``WorkflowStore``: every operation's transaction is composed here,
/// once, and run by a per-backend ``SQLDriver`` (SQLite's group-committing writer, PostgreSQL's
/// pool). The operations are grouped by concern, one file each: runs (this file), signals and
/// the inbox, workflow tasks, activity tasks, timers, approvals.
///
/// Locking: on PostgreSQL an operation that changes a run locks the run's row first
/// (``SQLDialect/lockRows``), then any approval's, so a signal and a closing task cannot pass each
/// other and concurrent operations cannot deadlock; claims skip rows others hold. On SQLite the
/// write transaction itself excludes every other writer.
///
/// Not generic over its driver: generic code instantiated from another module runs
/// unspecialized, looking up type metadata at run time on every statement. The driver is an
/// existential, the core compiled once in this module; backends add accessors in extensions.
package final class SQLWorkflowStore: WorkflowStore {
    package let driver: any SQLDriver
    let dialect: SQLDialect

    package init(driver: any SQLDriver) {
        self.driver = driver
        self.dialect = driver.dialect
    }

    package var notifier: WorkNotifier { driver.notifier }

    @discardableResult
    package func migrate() async throws -> [String] {
        try await driver.migrate()
    }

    package func pendingMigrations() async throws -> [String] {
        try await driver.pendingMigrations()
    }

    // MARK: - Runs

    package func startWorkflow(_ request: StartWorkflowRequest) async throws -> StartWorkflowResult {
        let started = try startedEvent(request)
        // An eager start writes the started event with its first task's events, in one insert.
        let firstTask = try request.firstTask.map {
            try PreparedCompletion($0, startedEvent: (body: started, timestamp: request.now))
        }
        if let firstTask, request.idReusePolicy == .allowDuplicate, request.searchAttributes.isEmpty,
            request.notBefore == nil, firstTask.plan.writesOnlyItsRun
        {
            // The run's row is inserted as its first task leaves it, with that task's writes: one
            // statement on PostgreSQL. If the id has an open run, it changes nothing and throws.
            do {
                return try await writeComposed { [self] connection, notifications in
                    _ = try await commit(
                        connection, firstTask, run: .started(taskQueue: request.taskQueue), insertingRun: request,
                        notifications: &notifications)
                    return StartWorkflowResult(runID: request.runID, created: true)
                }
            } catch is CommitRequirementUnmet {
                // The id's open run (or a concurrent start's) is found below.
            }
        }
        return try await driver.write { [self] connection, notifications in
            let result = try await insertRun(
                connection, request, started: firstTask == nil ? started : nil, needsTask: firstTask == nil,
                notifications: &notifications)
            guard result.created else { return result }
            if let firstTask {
                _ = try await commit(
                    connection, firstTask, run: .started(taskQueue: request.taskQueue), notifications: &notifications)
            } else {
                notifications.topics.insert(.workflowTasks)
            }
            return result
        }
    }

    package func signalWithStart(_ start: StartWorkflowRequest, signal: SignalRequest) async throws
        -> (start: StartWorkflowResult, signal: SignalOutcome)
    {
        let started = try startedEvent(start)
        let kind = HistoryEvent.Kind.signalReceived(
            name: signal.name, payload: signal.payload, requestID: signal.requestID)
        let body = try EventCodec.encode(kind)
        return try await driver.write { [self] connection, notifications in
            let result = try await insertRun(
                connection, start, started: started, needsTask: true, notifications: &notifications)
            if result.created { notifications.topics.insert(.workflowTasks) }
            let outcome = try await deliverSignal(
                connection, signal, kind: kind, body: body, to: result.runID, notifications: &notifications)
            return (result, outcome)
        }
    }

    private func startedEvent(_ request: StartWorkflowRequest) throws -> Data {
        try EventCodec.encode(startedKind(of: request))
    }

    /// Creates the run of a start, as its ``WorkflowIDReusePolicy`` allows, or finds the open run
    /// of its id (locked, on PostgreSQL). The default policy costs no statement beyond the insert.
    /// - Parameter started: the encoded started event, or `nil` when the caller writes it with the
    ///   run's first task (``PreparedCompletion/startedEvent``).
    /// - Throws: `.workflowIDReused` when the policy refuses a new run.
    func insertRun(
        _ connection: any SQLConnection, _ request: StartWorkflowRequest, started: Data?, needsTask: Bool,
        notifications: inout StoreNotifications
    ) async throws -> StartWorkflowResult {
        if request.idReusePolicy != .allowDuplicate,
            let latest = try await connection.row(
                """
                SELECT run_id, status FROM workflow_runs WHERE workflow_id = ?
                ORDER BY status IN \(RunStatus.openSQLList) DESC, created_at DESC, run_id DESC
                LIMIT 1\(dialect.lockRows)
                """, request.workflowID)
        {
            let runID: String = try latest.get(0)
            let status = RunStatus(rawValue: try latest.get(1)) ?? .running
            if status.isOpen {
                guard request.idReusePolicy == .terminateIfRunning else {
                    return StartWorkflowResult(runID: runID, created: false)
                }
                try await terminateRun(
                    connection, runID: runID,
                    reason: "terminated by a new start of the id (id reuse policy terminateIfRunning)",
                    now: request.now, notifications: &notifications)
            } else if let refusal = request.idReusePolicy.refusal(workflowID: request.workflowID, latest: status) {
                throw KeelError(.workflowIDReused, refusal)
            }
        }
        let insert = runInsert(request, historyLength: 1, taskVersion: 0, needsTask: needsTask, stage: nil)
        guard try await connection.changes(insert.sql, insert.binds) > 0 else {
            // A concurrent start won (PostgreSQL): its run is the id's open run.
            return StartWorkflowResult(
                runID: try await lockOpenRun(connection, workflowID: request.workflowID, action: "start"),
                created: false)
        }
        if let started {
            try await connection.execute(
                """
                INSERT INTO history_events (run_id, event_id, kind, timestamp, body) VALUES (?, 1,
                    'workflowStarted', ?, ?)
                """, request.runID, request.now, started)
        }
        try await writeSearchAttributes(connection, request.searchAttributes, runID: request.runID)
        return StartWorkflowResult(runID: request.runID, created: true)
    }

    /// The `INSERT` of a start's run, with its history's length, task version and need of a task
    /// as given; it counts the row, and is required (``SQLStatement/isRequired``). The partial
    /// unique index on open runs' workflow ids makes it insert nothing when the id has an open
    /// run (a concurrent start's, on PostgreSQL).
    func runInsert(
        _ request: StartWorkflowRequest, historyLength: Int, taskVersion: Int, needsTask: Bool, stage: String?
    ) -> SQLStatement {
        SQLStatement(
            """
            INSERT INTO workflow_runs (run_id, workflow_id, workflow_type, status, input, created_at, updated_at,
                                       history_length, task_version, needs_task, task_ready_at, task_queue,
                                       parent_workflow_id, parent_run_id, parent_seq, parent_close_policy,
                                       schedule_id, stage)
            VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (workflow_id) WHERE status IN \(RunStatus.openSQLList) DO NOTHING\(dialect.countingChanges)
            """,
            [
                .text(request.runID), .text(request.workflowID), .text(request.workflowType),
                .blob(request.input.data), request.now.sqlValue, request.now.sqlValue,
                .int(Int64(historyLength)), .int(Int64(taskVersion)), .bool(needsTask),
                needsTask ? max(request.now, request.notBefore ?? request.now).sqlValue : .null,
                .text(request.taskQueue), request.parent?.parent.workflowID.sqlValue ?? .null,
                request.parent?.parent.runID.sqlValue ?? .null, request.parent?.seq.sqlValue ?? .null,
                request.parent?.closePolicy.rawValue.sqlValue ?? .null, request.scheduleID.sqlValue, stage.sqlValue,
            ], isRequired: true)
    }

    package func terminate(workflowID: String, reason: String, now: Date) async throws -> String {
        try await driver.write { [self] connection, notifications in
            try await lockFamily(connection, ofOpenRunOf: workflowID)
            let runID = try await lockOpenRun(connection, workflowID: workflowID, action: "terminate")
            try await terminateRun(connection, runID: runID, reason: reason, now: now, notifications: &notifications)
            return runID
        }
    }

    /// Closes an open run as terminated, dropping its pending work, telling its parent and
    /// applying its children's parent-close policy; the caller holds its row lock.
    func terminateRun(
        _ connection: any SQLConnection, runID: String, reason: String, now: Date,
        notifications: inout StoreNotifications
    ) async throws {
        try await connection.execute(
            """
            INSERT INTO history_events (run_id, event_id, kind, timestamp, body)
            SELECT run_id, history_length + 1, 'workflowTerminated', ?, ? FROM workflow_runs WHERE run_id = ?
            """, now, try EventCodec.encode(.workflowTerminated(reason: reason)), runID)
        try await connection.execute(
            """
            UPDATE workflow_runs SET status = 'terminated', status_reason = ?, closed_at = ?, updated_at = ?,
                history_length = history_length + 1, task_version = task_version + 1, needs_task = \(dialect.false),
                task_ready_at = NULL, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
                    task_claims = 0
            WHERE run_id = ?
            """, reason, now, now, runID)
        try await deletePendingWork(connection, runID: runID, withdrawingApprovals: true, now: now)
        let closing = CommitPlan.Closing(
            status: .terminated, failure: ErrorInfo(type: "WorkflowTerminated", message: reason), reason: reason)
        try await notifyParent(connection, ofClosedRun: runID, closing, now: now, notifications: &notifications)
        try await applyParentClosePolicy(connection, closedRun: runID, now: now, notifications: &notifications)
        notifications.topics.insert(.timers)  // the run may be a schedule's, with a tick buffered behind it
        notifications.closedRuns.append(runID)
    }

    package func blockRun(runID: String, leaseToken: Int64, reason: String, now: Date) async throws {
        try await driver.write { [self] connection, _ in
            try await park(connection, runID: runID, leaseToken: leaseToken, reason: reason, now: now)
        }
    }

    /// Blocks a running run, with the reason; only the holder of `leaseToken` may (`nil`: the
    /// caller has just claimed it in this transaction).
    func park(_ connection: any SQLConnection, runID: String, leaseToken: Int64?, reason: String, now: Date)
        async throws
    {
        try await connection.execute(
            """
            UPDATE workflow_runs SET status = 'blocked', status_reason = ?, updated_at = ?,
                lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0
            WHERE run_id = ? AND status = 'running' AND (CAST(? AS BIGINT) IS NULL OR lease_token = ?)
            """, reason, now, runID, leaseToken, leaseToken)
    }

    package func unblockRuns(now: Date) async throws -> Int {
        try await driver.write { [self] connection, notifications in
            let unblocked = try await connection.changes(
                """
                UPDATE workflow_runs SET status = 'running', status_reason = NULL, needs_task = \(dialect.true),
                    task_ready_at = ?,
                    task_version = task_version + 1, task_claims = 0
                WHERE status = 'blocked'\(dialect.countingChanges)
                """, now)
            if unblocked > 0 { notifications.topics.insert(.workflowTasks) }
            return unblocked
        }
    }

    // MARK: - Queries

    private static var runColumns: String {
        "run_id, workflow_id, workflow_type, status, input, result, failure, status_reason, created_at, "
            + "updated_at, closed_at, history_length, previous_run_id, parent_workflow_id, parent_run_id, stage"
    }

    package func findRun(workflowID: String) async throws -> WorkflowRun? {
        try await driver.read { connection in
            try await connection.row(
                """
                SELECT \(Self.runColumns) FROM workflow_runs WHERE workflow_id = ?
                ORDER BY status IN \(RunStatus.openSQLList) DESC, created_at DESC, run_id DESC LIMIT 1
                """, workflowID
            ).map(Self.run(from:))
        }
    }

    package func run(runID: String) async throws -> WorkflowRun? {
        try await driver.read { connection in
            try await connection.row("SELECT \(Self.runColumns) FROM workflow_runs WHERE run_id = ?", runID).map(
                Self.run(from:))
        }
    }

    package func nextRun(after runID: String) async throws -> WorkflowRun? {
        try await driver.read { connection in
            try await connection.row("SELECT \(Self.runColumns) FROM workflow_runs WHERE previous_run_id = ?", runID)
                .map(Self.run(from:))
        }
    }

    /// Lists runs newest first with keyset paging. With search-attribute filters the first one
    /// (by name) drives the query from its index, which holds each row's run creation time, so a
    /// page is read in order without sorting; every other filter is a condition on the run.
    package func listRuns(_ query: RunQuery) async throws -> [WorkflowRun] {
        var conditions: [String] = []
        var binds: [SQLValue] = []
        func match(_ table: String, _ name: String, _ value: SearchAttributeValue) -> String {
            let row = value.indexed.first ?? (text: "", number: nil)
            binds.append(.text(name))
            if let number = row.number {
                binds.append(.double(number))
                return "\(table).name = ? AND \(table).number_value = ?"
            }
            binds.append(.text(row.text ?? ""))
            return "\(table).name = ? AND \(table).text_value = ?"
        }
        let filters = query.searchAttributes.sorted { $0.key < $1.key }
        var from = "workflow_runs"
        var order = "workflow_runs.created_at DESC, workflow_runs.run_id DESC"
        var keyset = "(workflow_runs.created_at, workflow_runs.run_id)"
        if let (name, value) = filters.first {
            from = "run_search_attributes AS driver JOIN workflow_runs ON workflow_runs.run_id = driver.run_id"
            order = "driver.created_at DESC, driver.run_id DESC"
            keyset = "(driver.created_at, driver.run_id)"
            conditions.append(match("driver", name, value))
        }
        for (name, value) in filters.dropFirst() {
            conditions.append(
                "EXISTS (SELECT 1 FROM run_search_attributes AS a WHERE a.run_id = workflow_runs.run_id AND "
                    + match("a", name, value) + ")")
        }
        for (column, value) in [
            ("workflow_id", query.workflowID), ("parent_workflow_id", query.parentWorkflowID),
            ("parent_run_id", query.parentRunID), ("stage", query.stage), ("status", query.status?.rawValue),
            ("workflow_type", query.workflowType),
        ] {
            guard let value else { continue }
            conditions.append("workflow_runs.\(column) = ?")
            binds.append(.text(value))
        }
        if query.latestRunPerWorkflow {
            // A run continued as new always has a successor; other runs are superseded by a later
            // start of their id (index workflow_runs_workflow_id answers it).
            conditions.append(
                """
                workflow_runs.status <> 'continuedAsNew' AND NOT EXISTS (SELECT 1 FROM workflow_runs AS later
                    WHERE later.workflow_id = workflow_runs.workflow_id AND later.created_at > workflow_runs.created_at)
                """)
        }
        if let after = query.after {
            conditions.append("\(keyset) < (?, ?)")
            binds += [after.createdAt.sqlValue, .text(after.runID)]
        }
        binds.append(.int(Int64(query.limit)))
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let columns = Self.runColumns.split(separator: ", ").map { "workflow_runs.\($0)" }.joined(separator: ", ")
        let sql = "SELECT \(columns) FROM \(from) \(whereClause) ORDER BY \(order) LIMIT ?"
        let finalBinds = binds
        return try await driver.read { connection in
            try await connection.query(sql, finalBinds).map(Self.run(from:))
        }
    }

    package func searchAttributes(runID: String) async throws -> [String: SearchAttributeValue] {
        try await driver.read { connection in
            var rows: [String: (kind: String, values: [(text: String?, number: Double?)])] = [:]
            for row in try await connection.query(
                """
                SELECT name, kind, text_value, number_value FROM run_search_attributes WHERE run_id = ?
                ORDER BY name, text_value
                """, runID)
            {
                let value = (text: try row.get(2, as: String?.self), number: try row.get(3, as: Double?.self))
                let kind: String = try row.get(1)
                rows[try row.get(0), default: (kind, [])].values.append(value)
            }
            return rows.mapValues { SearchAttributeValue(kind: $0.kind, rows: $0.values) }
        }
    }

    package func searchAttributeKind(named name: String) async throws -> String? {
        try await driver.read { connection in
            try await connection.row("SELECT kind FROM run_search_attributes WHERE name = ? LIMIT 1", name)?.get(0)
        }
    }

    package func history(runID: String) async throws -> [HistoryEvent] {
        try await driver.read { [self] connection in try await history(connection, runID: runID) }
    }

    package func pendingWork(runID: String) async throws -> PendingWork {
        try await driver.read { [self] connection in
            let activities = try await connection.query(
                """
                SELECT seq, activity_name, task_queue, attempt, visible_at, lease_owner, last_error FROM activity_tasks
                WHERE run_id = ? ORDER BY seq
                """, runID
            ).map { row in
                PendingWork.Activity(
                    seq: try row.get(0), activityName: try row.get(1), taskQueue: try row.get(2),
                    attempt: try row.get(3), nextAttemptAt: try row.get(4), leaseOwner: try row.get(5),
                    lastError: try row.get(6))
            }
            let timers = try await connection.query(
                "SELECT seq, fire_at FROM timers WHERE run_id = ? ORDER BY fire_at", runID
            )
            .map { PendingWork.Timer(seq: try $0.get(0), fireAt: try $0.get(1)) }
            let inbox = try await inbox(connection, runID: runID).map {
                PendingWork.Inbox(kind: $0.kind.name, detail: EventCodec.summary(of: $0.kind), receivedAt: $0.timestamp)
            }
            return PendingWork(activities: activities, timers: timers, inbox: inbox)
        }
    }

    // MARK: - Statements shared by the operations

    /// Locks the run's row (PostgreSQL) and reads what fencing needs.
    ///
    /// Whether the inbox may hold events comes from the locked row's `needs_task` too: on
    /// PostgreSQL, a lock that waited for a transaction adding to the inbox returns the row as that
    /// transaction left it (`needs_task` set), while the statement's `EXISTS` still sees the inbox
    /// as it was before — a fence that trusted it alone could close a run over an unseen signal, or
    /// leave an outcome in the inbox with no task to take it.
    func lockRun(_ connection: any SQLConnection, runID: String) async throws -> RunFence? {
        try await connection.row(
            """
            SELECT status, task_version, history_length, lease_token, lease_expires_at,
                   needs_task = \(dialect.true)
                       OR EXISTS (SELECT 1 FROM run_inbox WHERE run_inbox.run_id = workflow_runs.run_id),
                   schedule_id IS NOT NULL, task_queue
            FROM workflow_runs WHERE run_id = ?\(dialect.lockRows)
            """, runID
        ).map { row in
            RunFence(
                status: RunStatus(rawValue: try row.get(0)) ?? .running, taskVersion: try row.get(1),
                historyLength: try row.get(2), leaseToken: try row.get(3), leaseExpiresAt: try row.get(4),
                hasInbox: try row.get(5), startedBySchedule: try row.get(6), taskQueue: try row.get(7))
        }
    }

    /// The conditions, appended to an `UPDATE` of the run's row by its id, under which a commit
    /// whose worker knows the run (``WorkflowTaskCompletion/knownRun``) may stand, checked by the
    /// statement itself instead of after a locking read: the run is open and still at `run`'s task
    /// version and history length, and
    /// - for a claimed task: its lease is still the task's and no event was queued in its inbox
    ///   since the claim (its `inbox_version` is the one the claim read);
    /// - for the fast path (``RunFence/admitsFastPath(_:now:)``): no one holds its task lease and
    ///   nothing waits in its inbox.
    ///
    /// Whatever queues an inbox event updates the run's row in the same transaction (`needs_task`,
    /// `inbox_version`), so an `UPDATE` that waited for that transaction sees it when PostgreSQL
    /// re-checks these conditions on the row's new version.
    func writeFence(_ completion: WorkflowTaskCompletion, run: RunFence) -> (sql: String, binds: [SQLValue]) {
        let common = " AND status = 'running' AND task_version = ? AND history_length = ?"
        let binds: [SQLValue] = [.int(Int64(run.taskVersion)), .int(Int64(run.historyLength))]
        if let token = completion.leaseToken {
            return (
                common + " AND lease_token = ? AND inbox_version = ?",
                binds + [.int(token), .int(completion.claimedInboxVersion ?? -1)]
            )
        }
        return (
            common
                + """
                 AND (lease_token IS NULL OR lease_expires_at <= ?) AND needs_task = \(dialect.false)
                    AND NOT EXISTS (SELECT 1 FROM run_inbox WHERE run_inbox.run_id = workflow_runs.run_id)
                """,
            binds + [completion.now.sqlValue]
        )
    }

    /// Locks the open run of `workflowID` (PostgreSQL). - Throws: `.workflowClosed` or `.workflowNotFound`.
    func lockOpenRun(_ connection: any SQLConnection, workflowID: String, action: String) async throws -> String {
        if let row = try await connection.row(
            """
            SELECT run_id FROM workflow_runs WHERE workflow_id = ?
                AND status IN \(RunStatus.openSQLList)\(dialect.lockRows)
            """, workflowID)
        {
            return try row.get(0)
        }
        if let row = try await connection.row(
            """
            SELECT status FROM workflow_runs WHERE workflow_id = ? ORDER BY created_at DESC LIMIT 1
            """, workflowID)
        {
            throw KeelError(
                .workflowClosed,
                "cannot \(action): workflow '\(workflowID)' is closed (\(try row.get(0, as: String.self)))")
        }
        throw KeelError(.workflowNotFound, "cannot \(action): no workflow with id '\(workflowID)'")
    }

    func history(_ connection: any SQLConnection, runID: String) async throws -> [HistoryEvent] {
        try await connection.query(
            "SELECT event_id, timestamp, body FROM history_events WHERE run_id = ? ORDER BY event_id", runID
        )
        .map { HistoryEvent(id: try $0.get(0), timestamp: try $0.get(1), kind: try EventCodec.decode(try $0.get(2))) }
    }

    /// Drops what a closing run was waiting on, withdrawing its pending approvals if asked.
    ///
    /// The caller holds the run's row lock. On PostgreSQL, rows another transaction holds (an
    /// activity outcome or a timer being recorded, which waits for the run's row) are skipped
    /// rather than waited for — waiting would deadlock; that transaction deletes its row itself
    /// and finds the run closed.
    /// - Parameter inboxMayHoldEvents: `false` when the run's lock showed its inbox empty
    ///   (``RunFence/hasInbox``): then nothing can have arrived since, and there is nothing to delete.
    func deletePendingWork(
        _ connection: any SQLConnection, runID: String, withdrawingApprovals: Bool, inboxMayHoldEvents: Bool = true,
        now: Date
    ) async throws {
        if withdrawingApprovals { try await withdrawApprovals(connection, runID: runID, now: now) }
        try await connection.executeTogether(pendingWorkDeletions(runID: runID, inboxMayHoldEvents: inboxMayHoldEvents))
    }

    /// The statements of ``deletePendingWork(_:runID:withdrawingApprovals:inboxMayHoldEvents:now:)``
    /// that delete rows (independent of one another and of the run's own row).
    /// - Parameter sparing: work whose rows the caller deletes itself, in the same joined
    ///   statement (``TakenWork``), so no two statements touch one row.
    func pendingWorkDeletions(runID: String, inboxMayHoldEvents: Bool, sparing: TakenWork? = nil) -> [SQLStatement] {
        func sparingSeqs(_ seqs: [Int]) -> (sql: String, binds: [SQLValue]) {
            guard !seqs.isEmpty else { return ("", []) }
            let marks = Array(repeating: "?", count: seqs.count).joined(separator: ", ")
            return (" AND seq NOT IN (\(marks))", seqs.map { .int(Int64($0)) })
        }
        let activities = sparingSeqs(sparing?.activitySeq.map { [$0] } ?? [])
        let timers = sparingSeqs(sparing?.timerSeqs ?? [])
        var deletions = [
            SQLStatement(
                """
                DELETE FROM activity_tasks WHERE id IN (SELECT id FROM activity_tasks
                    WHERE run_id = ?\(activities.sql)\(dialect.skipLocked))
                """, [.text(runID)] + activities.binds),
            SQLStatement(
                "DELETE FROM timers WHERE id IN (SELECT id FROM timers WHERE run_id = ?\(timers.sql)\(dialect.skipLocked))",
                [.text(runID)] + timers.binds),
        ]
        if inboxMayHoldEvents { deletions.append(SQLStatement("DELETE FROM run_inbox WHERE run_id = ?", runID)) }
        return deletions
    }

    static func run(from row: SQLRow) throws -> WorkflowRun {
        WorkflowRun(
            workflowID: try row.get(1), runID: try row.get(0), workflowType: try row.get(2),
            status: RunStatus(rawValue: try row.get(3)) ?? .running, input: Payload(data: try row.get(4)),
            result: try row.get(5, as: Data?.self).map(Payload.init(data:)),
            failure: try row.get(6, as: Data?.self).map { try EventCodec.decode(attribute: ErrorInfo.self, from: $0) },
            statusReason: try row.get(7), createdAt: try row.get(8), updatedAt: try row.get(9),
            closedAt: try row.get(10),
            historyLength: try row.get(11), previousRunID: try row.get(12),
            parent: try row.get(13, as: String?.self).map {
                ParentWorkflowInfo(workflowID: $0, runID: try row.get(14))
            }, stage: try row.get(15))
    }
}
