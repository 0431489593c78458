import Foundation
import GRDB
import WorkflowRuntime

/// The embedded default store: one SQLite file in WAL mode, shared safely by a daemon and CLI
/// processes (busy timeout; one writer at a time).
///
/// Durability: `synchronous=FULL` by default, so nothing acknowledged is lost even on power
/// failure (each group commit syncs the WAL before its callers are answered).
/// ``SQLiteSynchronous/normal`` keeps the database consistent but may lose the last commits on power
/// failure (not on a process crash); choose it with `sqlite:PATH?synchronous=normal`.
///
/// Concurrent writes from this process are committed together (group commit).
package final class SQLiteWorkflowStore: WorkflowStore {
    package let notifier = WorkNotifier()
    package let path: String
    let pool: DatabasePool
    private let writer: BatchedWriter

    /// Opens the database file at `path`. Call ``migrate()`` before use.
    /// - Parameter createIfMissing: whether a missing file is created. Directories are never
    ///   created: a missing one is reported, so a mistyped path creates nothing.
    /// - Throws: ``KeelError`` `.databaseUnreachable` naming the path (and the missing directory).
    package init(path: String, synchronous: SQLiteSynchronous = .full, busyTimeout: Duration = .seconds(30),
                createIfMissing: Bool = true) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(busyTimeout.seconds)
        configuration.maximumReaderCount = 4
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous.rawValue.uppercased())")
            // Hot pages (run rows, index roots) are rewritten by every commit: checkpoint less often so
            // each is copied back once per checkpoint rather than many times, and keep more pages cached.
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 8000")
            try db.execute(sql: "PRAGMA cache_size = -65536")
        }
        if !FileManager.default.fileExists(atPath: path) {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw KeelError(.databaseUnreachable,
                                "no SQLite database at '\(path)': the directory '\(directory)' does not exist (Keel creates no directories; check the path)")
            }
            guard createIfMissing else {
                throw KeelError(.databaseUnreachable, "no SQLite database at '\(path)': check the path, or create the database by migrating it")
            }
        }
        do {
            pool = try Self.openPool(path: path, configuration: configuration, busyTimeout: busyTimeout)
        } catch {
            throw KeelError(.databaseUnreachable, "cannot open SQLite database at \(path): \(error)")
        }
        self.path = path
        writer = BatchedWriter(pool: pool)
    }

    /// Opens the pool, retrying while another process holds the lock as it switches a new file to
    /// WAL mode: SQLite answers `PRAGMA journal_mode = WAL` with SQLITE_BUSY without waiting.
    private static func openPool(path: String, configuration: Configuration, busyTimeout: Duration) throws -> DatabasePool {
        let deadline = ContinuousClock.now + busyTimeout
        while true {
            do {
                return try DatabasePool(path: path, configuration: configuration)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && ContinuousClock.now < deadline {
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
    }

    /// Applies the pending migrations in one `IMMEDIATE` transaction: the check and the apply hold
    /// SQLite's write lock together, so concurrent processes apply each migration once. The
    /// bookkeeping is GRDB's `grdb_migrations` table, as in files migrated by earlier versions.
    /// - Returns: the names this call applied.
    @discardableResult
    package func migrate() async throws -> [String] {
        let migrations = Self.migrations
        return try await pool.writeWithoutTransaction { db in
            var appliedNow: [String] = []
            try db.inTransaction(.immediate) {
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)")
                let applied = try String.fetchSet(db, sql: "SELECT identifier FROM grdb_migrations")
                for migration in migrations where !applied.contains(migration.name) {
                    try db.execute(sql: migration.sql)
                    try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES (?)", arguments: [migration.name])
                    appliedNow.append(migration.name)
                }
                return .commit
            }
            return appliedNow
        }
    }

    package func pendingMigrations() async throws -> [String] {
        let migrations = Self.migrations.map(\.name)
        let applied = try await pool.read { db in
            try db.tableExists("grdb_migrations") ? try String.fetchSet(db, sql: "SELECT identifier FROM grdb_migrations") : []
        }
        return migrations.filter { !applied.contains($0) }
    }

    // MARK: - Writes

    /// Runs `body` in the next group commit and, once committed, delivers its notifications.
    func write<T: Sendable>(_ body: @escaping @Sendable (Database, inout StoreNotifications) throws -> T) async throws -> T {
        let (value, notifications) = try await writer.write { db in
            var notifications = StoreNotifications()
            let value = try body(db, &notifications)
            return (value, notifications)
        }
        notifications.deliver(to: notifier)
        return value
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.read(body)
    }

    package func startWorkflow(_ request: StartWorkflowRequest) async throws -> StartWorkflowResult {
        let body = try EventCodec.encode(.workflowStarted(workflowType: request.workflowType, workflowID: request.workflowID, input: request.input))
        let firstTask = try request.firstTask.map(PreparedCompletion.init)
        return try await write { db, notifications in
            if let existing = try db.cachedValue(String.self, sql: """
                SELECT run_id FROM workflow_runs WHERE workflow_id = ? AND status IN \(RunStatus.openSQLList)
                """, arguments: [request.workflowID]) {
                return StartWorkflowResult(runID: existing, created: false)
            }
            let now = request.now.timeIntervalSince1970
            let needsTask = firstTask == nil
            try db.executeCached(sql: """
                INSERT INTO workflow_runs (run_id, workflow_id, workflow_type, status, input, created_at, updated_at,
                                           history_length, needs_task, task_ready_at, task_queue)
                VALUES (?, ?, ?, 'running', ?, ?, ?, 1, ?, ?, ?)
                """, arguments: [request.runID, request.workflowID, request.workflowType, request.input.data, now, now,
                                 needsTask, needsTask ? now : nil, request.taskQueue])
            try db.executeCached(sql: "INSERT INTO history_events (run_id, event_id, kind, timestamp, body) VALUES (?, 1, 'workflowStarted', ?, ?)",
                                 arguments: [request.runID, now, body])
            if let firstTask {
                _ = try Self.commit(db, firstTask, run: .started, notifications: &notifications)
            } else {
                notifications.topics.insert(.workflowTasks)
            }
            return StartWorkflowResult(runID: request.runID, created: true)
        }
    }

    package func signal(_ request: SignalRequest) async throws -> SignalOutcome {
        let kind = HistoryEvent.Kind.signalReceived(name: request.name, payload: request.payload, requestID: request.requestID)
        let body = try EventCodec.encode(kind)
        let fingerprint = request.fingerprint
        return try await write { db, notifications in
            let runID = try Self.openRunID(db, workflowID: request.workflowID, action: "signal '\(request.name)'")
            if let requestID = request.requestID {
                try db.executeCached(sql: """
                    INSERT OR IGNORE INTO signal_requests (run_id, request_id, received_at, fingerprint) VALUES (?, ?, ?, ?)
                    """, arguments: [runID, requestID, request.now.timeIntervalSince1970, fingerprint])
                if db.changesCount == 0 {
                    let earlier = try db.cachedValue(String?.self, sql: """
                        SELECT fingerprint FROM signal_requests WHERE run_id = ? AND request_id = ?
                        """, arguments: [runID, requestID]) ?? nil
                    if let earlier, earlier != fingerprint { throw request.reusedRequestIDError(requestID) }
                    return .duplicate(runID: runID)
                }
            }
            try Self.addToInbox(db, runID: runID, kind: kind, body: body, now: request.now, notifications: &notifications)
            return .delivered(runID: runID)
        }
    }

    package func requestCancellation(workflowID: String, reason: String?, now: Date) async throws -> String {
        let kind = HistoryEvent.Kind.cancelRequested(reason: reason)
        let body = try EventCodec.encode(kind)
        return try await write { db, notifications in
            let runID = try Self.openRunID(db, workflowID: workflowID, action: "cancel")
            try Self.addToInbox(db, runID: runID, kind: kind, body: body, now: now, notifications: &notifications)
            return runID
        }
    }

    package func terminate(workflowID: String, reason: String, now: Date) async throws -> String {
        let body = try EventCodec.encode(.workflowTerminated(reason: reason))
        return try await write { db, notifications in
            let runID = try Self.openRunID(db, workflowID: workflowID, action: "terminate")
            let time = now.timeIntervalSince1970
            try db.executeCached(sql: """
                INSERT INTO history_events (run_id, event_id, kind, timestamp, body)
                SELECT run_id, history_length + 1, 'workflowTerminated', ?, ? FROM workflow_runs WHERE run_id = ?
                """, arguments: [time, body, runID])
            try db.executeCached(sql: """
                UPDATE workflow_runs SET status = 'terminated', status_reason = ?, closed_at = ?, updated_at = ?,
                    history_length = history_length + 1, task_version = task_version + 1, needs_task = 0,
                    task_ready_at = NULL, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0
                WHERE run_id = ?
                """, arguments: [reason, time, time, runID])
            try Self.deletePendingWork(db, runID: runID, withdrawingApprovals: true, now: now)
            notifications.closedRuns.append(runID)
            return runID
        }
    }

    // MARK: - Workflow tasks

    package func claimWorkflowTasks(owner: String, limit: Int, lease: Duration, now: Date, taskQueues: [String],
                                   cachedTaskVersion: @escaping @Sendable (String) -> Int?) async throws -> [WorkflowTask] {
        let token = Int64.random(in: 1...Int64.max)
        let time = now.timeIntervalSince1970
        let expiry = time + lease.seconds
        let queues = Self.placeholders(taskQueues.count)
        return try await write { db, _ in
            let rows = try db.cachedRows(sql: """
                UPDATE workflow_runs SET lease_owner = ?, lease_token = ?, lease_expires_at = ?, task_ready_at = ?,
                    task_claims = task_claims + 1
                WHERE run_id IN (SELECT run_id FROM workflow_runs
                                 WHERE needs_task = 1 AND status = 'running' AND task_ready_at <= ? AND task_queue IN (\(queues))
                                 ORDER BY task_ready_at LIMIT ?)
                RETURNING run_id, workflow_id, workflow_type, task_version, task_claims
                """, arguments: StatementArguments([owner, token, expiry, expiry, time] as [any DatabaseValueConvertible])!
                    + StatementArguments(taskQueues) + [limit])
            var tasks: [WorkflowTask] = []
            for row in rows {
                let runID: String = row["run_id"]
                let version: Int = row["task_version"]
                do {
                    let history = cachedTaskVersion(runID) == version ? nil : try Self.history(db, runID: runID)
                    tasks.append(WorkflowTask(runID: runID, workflowID: row["workflow_id"], workflowType: row["workflow_type"],
                                              leaseToken: token, taskVersion: version, history: history, inbox: try Self.inbox(db, runID: runID),
                                              claims: row["task_claims"]))
                } catch let error as KeelError where error.code == .storage {  // EventCodec's; database errors end the claim
                    // One undecodable row must not stop every claim: park its run, go on with the others.
                    try Self.park(db, runID: runID, reason: undecodableHistoryReason(runID: runID, error: error), now: now)
                }
            }
            return tasks
        }
    }

    package func completeWorkflowTask(_ completion: WorkflowTaskCompletion) async throws -> WorkflowTaskCommitResult {
        let prepared = try PreparedCompletion(completion)
        return try await write { db, notifications in
            guard let run = try Self.fence(db, runID: completion.runID), run.admits(completion) else {
                return .rejected(reason: "the workflow task's lease was lost (another worker took the run over, or it closed)")
            }
            if prepared.plan.closing != nil, run.hasInbox,
               try Self.hasInbox(db, runID: completion.runID, after: completion.consumedInboxThrough) {
                // Refuse to close the run over an event it has not seen; release the lease so it runs again.
                try db.executeCached(sql: """
                    UPDATE workflow_runs SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0, task_ready_at = ?
                    WHERE run_id = ?
                    """, arguments: [completion.now.timeIntervalSince1970, completion.runID])
                notifications.topics.insert(.workflowTasks)
                return .rejected(reason: "an event arrived while the task was closing the run")
            }
            let version = try Self.commit(db, prepared, run: run, notifications: &notifications)
            return .committed(taskVersion: version)
        }
    }

    package func blockRun(runID: String, leaseToken: Int64, reason: String, now: Date) async throws {
        try await write { db, _ in
            try db.executeCached(sql: """
                UPDATE workflow_runs SET status = 'blocked', status_reason = ?, updated_at = ?,
                    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0
                WHERE run_id = ? AND lease_token = ? AND status = 'running'
                """, arguments: [reason, now.timeIntervalSince1970, runID, leaseToken])
        }
    }

    /// Blocks a run this transaction holds the lease of (it claimed it), with the reason.
    static func park(_ db: Database, runID: String, reason: String, now: Date) throws {
        try db.executeCached(sql: """
            UPDATE workflow_runs SET status = 'blocked', status_reason = ?, updated_at = ?,
                lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0
            WHERE run_id = ? AND status = 'running'
            """, arguments: [reason, now.timeIntervalSince1970, runID])
    }

    package func unblockRuns(now: Date) async throws -> Int {
        try await write { db, notifications in
            try db.executeCached(sql: """
                UPDATE workflow_runs SET status = 'running', status_reason = NULL, needs_task = 1, task_ready_at = ?,
                    task_version = task_version + 1, task_claims = 0
                WHERE status = 'blocked'
                """, arguments: [now.timeIntervalSince1970])
            let count = db.changesCount
            if count > 0 { notifications.topics.insert(.workflowTasks) }
            return count
        }
    }

    // MARK: - Activity tasks

    package func claimActivityTasks(owner: String, limit: Int, defaultLease: Duration, now: Date,
                                   taskQueues: [String]) async throws -> [ActivityTask] {
        let token = Int64.random(in: 1...Int64.max)
        let time = now.timeIntervalSince1970
        let queues = Self.placeholders(taskQueues.count)
        return try await write { db, notifications in
            let rows = try db.cachedRows(sql: """
                UPDATE activity_tasks SET lease_owner = ?, lease_token = ?, attempt = attempt + 1,
                    visible_at = ? + COALESCE(start_to_close, ?)
                WHERE id IN (SELECT id FROM activity_tasks WHERE visible_at <= ? AND task_queue IN (\(queues))
                             ORDER BY visible_at LIMIT ?)
                RETURNING run_id, workflow_id, seq, activity_name, input, idempotency_key, options, attempt,
                          scheduled_at, heartbeat_details
                """, arguments: StatementArguments([owner, token, time, defaultLease.seconds, time] as [any DatabaseValueConvertible])!
                    + StatementArguments(taskQueues) + [limit])
            var tasks: [ActivityTask] = []
            for row in rows {
                let (runID, seq, attempt): (String, Int, Int) = (row["run_id"], row["seq"], row["attempt"])
                let options: ActivityOptions
                do {
                    options = try EventCodec.decode(attribute: ActivityOptions.self, from: row["options"])
                } catch {
                    // One undecodable row must not stop every claim: its attempt fails for good, naming why.
                    let report = ActivityReport.undecodableRow(runID: runID, seq: seq, leaseToken: token, attempt: attempt, error: error, now: now)
                    _ = try Self.recordActivityOutcome(db, report, body: try EventCodec.encode(report.event!), notifications: &notifications)
                    continue
                }
                tasks.append(ActivityTask(
                    runID: runID, workflowID: row["workflow_id"], seq: seq, activityName: row["activity_name"],
                    input: Payload(data: row["input"]), idempotencyKey: row["idempotency_key"], options: options,
                    attempt: attempt, scheduledAt: Date(timeIntervalSince1970: row["scheduled_at"]), leaseToken: token,
                    heartbeatDetails: (row["heartbeat_details"] as Data?).map(Payload.init(data:))))
            }
            return tasks
        }
    }

    package func reportActivity(_ report: ActivityReport) async throws -> Bool {
        let body = try report.event.map(EventCodec.encode)
        return try await write { db, notifications in
            try Self.recordActivityOutcome(db, report, body: body, notifications: &notifications)
        }
    }

    package func reportActivityAndContinue(_ report: ActivityReport, continuation: WorkflowTaskCompletion) async throws -> FastPathResult {
        let body = try report.event.map(EventCodec.encode)
        let prepared = try PreparedCompletion(continuation)
        return try await write { db, notifications in
            guard let run = try Self.fence(db, runID: report.runID),
                  run.admitsFastPath(continuation, now: report.now.timeIntervalSince1970) else {
                return try Self.recordActivityOutcome(db, report, body: body, notifications: &notifications) ? .outcomeOnly : .stale
            }
            guard try Self.takeLeasedActivity(db, report) else { return .stale }
            return .continued(taskVersion: try Self.commit(db, prepared, run: run, notifications: &notifications))
        }
    }

    package func heartbeat(runID: String, seq: Int, leaseToken: Int64, details: Payload?, leaseUntil: Date) async throws -> Bool {
        try await write { db, _ in
            try db.executeCached(sql: """
                UPDATE activity_tasks SET visible_at = ?, heartbeat_details = COALESCE(?, heartbeat_details)
                WHERE run_id = ? AND seq = ? AND lease_token = ?
                """, arguments: [leaseUntil.timeIntervalSince1970, details?.data, runID, seq, leaseToken])
            return db.changesCount > 0
        }
    }

    // MARK: - Timers

    package func fireDueTimers(now: Date, limit: Int) async throws -> Int {
        let time = now.timeIntervalSince1970
        return try await write { db, notifications in
            let due = try db.cachedRows(sql: """
                DELETE FROM timers WHERE id IN (SELECT id FROM timers WHERE fire_at <= ? ORDER BY fire_at LIMIT ?)
                RETURNING run_id, seq, purpose
                """, arguments: [time, limit])
            for row in due {
                let runID: String = row[0]
                let seq: Int = row[1]
                let isApprovalDeadline = row[2] == "approval"
                guard let kind = isApprovalDeadline ? try Self.expireApproval(db, runID: runID, seq: seq, now: now)
                                                    : .timerFired(seq: seq) else { continue }
                try Self.addToInbox(db, runID: runID, kind: kind, body: try EventCodec.encode(kind), now: now, notifications: &notifications)
            }
            return due.count
        }
    }

    package func nextWakeUp() async throws -> Date? {
        try await read { db in
            try db.cachedValue(Double.self, sql: """
                SELECT MIN(t) FROM (
                    SELECT MIN(fire_at) AS t FROM timers
                    UNION ALL SELECT MIN(visible_at) FROM activity_tasks
                    UNION ALL SELECT MIN(task_ready_at) FROM workflow_runs WHERE needs_task = 1 AND status = 'running')
                """).map(Date.init(timeIntervalSince1970:))
        }
    }

    // MARK: - Queries

    package func findRun(workflowID: String) async throws -> WorkflowRun? {
        try await read { db in
            try db.cachedRow(sql: """
                SELECT * FROM workflow_runs WHERE workflow_id = ?
                ORDER BY status IN \(RunStatus.openSQLList) DESC, created_at DESC, rowid DESC LIMIT 1
                """, arguments: [workflowID]).map(Self.run(from:))
        }
    }

    package func run(runID: String) async throws -> WorkflowRun? {
        try await read { db in
            try db.cachedRow(sql: "SELECT * FROM workflow_runs WHERE run_id = ?", arguments: [runID]).map(Self.run(from:))
        }
    }

    package func listRuns(_ query: RunQuery) async throws -> [WorkflowRun] {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        if let status = query.status {
            conditions.append("status = ?")
            _ = arguments.append(contentsOf: [status.rawValue])
        }
        if let type = query.workflowType {
            conditions.append("workflow_type = ?")
            _ = arguments.append(contentsOf: [type])
        }
        if let after = query.after {
            conditions.append("(created_at, run_id) < (?, ?)")
            _ = arguments.append(contentsOf: [after.createdAt.timeIntervalSince1970, after.runID])
        }
        _ = arguments.append(contentsOf: [query.limit])
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let sql = "SELECT * FROM workflow_runs \(whereClause) ORDER BY created_at DESC, run_id DESC LIMIT ?"
        let finalArguments = arguments
        return try await read { db in try db.cachedRows(sql: sql, arguments: finalArguments).map(Self.run(from:)) }
    }

    package func history(runID: String) async throws -> [HistoryEvent] {
        try await read { db in try Self.history(db, runID: runID) }
    }

    package func pendingWork(runID: String) async throws -> PendingWork {
        try await read { db in
            let activities = try db.cachedRows(sql: """
                SELECT seq, activity_name, task_queue, attempt, visible_at, lease_owner, last_error FROM activity_tasks
                WHERE run_id = ? ORDER BY seq
                """, arguments: [runID]).map { row in
                PendingWork.Activity(seq: row["seq"], activityName: row["activity_name"], taskQueue: row["task_queue"], attempt: row["attempt"],
                                     nextAttemptAt: Date(timeIntervalSince1970: row["visible_at"]), leaseOwner: row["lease_owner"],
                                     lastError: row["last_error"])
            }
            let timers = try db.cachedRows(sql: "SELECT seq, fire_at FROM timers WHERE run_id = ? ORDER BY fire_at", arguments: [runID])
                .map { PendingWork.Timer(seq: $0["seq"], fireAt: Date(timeIntervalSince1970: $0["fire_at"])) }
            let inbox = try Self.inbox(db, runID: runID).map {
                PendingWork.Inbox(kind: $0.kind.name, detail: EventCodec.summary(of: $0.kind), receivedAt: $0.timestamp)
            }
            return PendingWork(activities: activities, timers: timers, inbox: inbox)
        }
    }
}

// MARK: - Statements shared by the operations above

extension SQLiteWorkflowStore {
    /// `?, ?, ...`: `count` statement placeholders (at least one, so `IN (...)` stays valid).
    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: max(1, count)).joined(separator: ", ")
    }

    /// Reads the run's fencing state (the caller holds the write lock).
    static func fence(_ db: Database, runID: String) throws -> RunFence? {
        try db.cachedRow(sql: """
            SELECT status, task_version, history_length, lease_token, lease_expires_at,
                   EXISTS (SELECT 1 FROM run_inbox WHERE run_inbox.run_id = workflow_runs.run_id) AS has_inbox
            FROM workflow_runs WHERE run_id = ?
            """, arguments: [runID]).map { row in
            RunFence(status: RunStatus(rawValue: row[0]) ?? .running, taskVersion: row[1], historyLength: row[2],
                     leaseToken: row[3], leaseExpiresAt: row[4], hasInbox: row[5])
        }
    }

    static func openRunID(_ db: Database, workflowID: String, action: String) throws -> String {
        if let runID = try db.cachedValue(String.self, sql: """
            SELECT run_id FROM workflow_runs WHERE workflow_id = ? AND status IN \(RunStatus.openSQLList)
            """, arguments: [workflowID]) {
            return runID
        }
        if let status = try db.cachedValue(String.self, sql: """
            SELECT status FROM workflow_runs WHERE workflow_id = ? ORDER BY created_at DESC LIMIT 1
            """, arguments: [workflowID]) {
            throw KeelError(.workflowClosed, "cannot \(action): workflow '\(workflowID)' is closed (\(status))")
        }
        throw KeelError(.workflowNotFound, "cannot \(action): no workflow with id '\(workflowID)'")
    }

    static func addToInbox(_ db: Database, runID: String, kind: HistoryEvent.Kind, body: Data, now: Date,
                           notifications: inout StoreNotifications) throws {
        let time = now.timeIntervalSince1970
        // As on PostgreSQL: a closed run takes nothing into its inbox.
        try db.executeCached(sql: """
            UPDATE workflow_runs SET task_ready_at = CASE WHEN needs_task = 1 THEN task_ready_at ELSE ? END,
                needs_task = 1, updated_at = ?
            WHERE run_id = ? AND status IN \(RunStatus.openSQLList)
            """, arguments: [time, time, runID])
        guard db.changesCount > 0 else { return }
        try db.executeCached(sql: "INSERT INTO run_inbox (run_id, kind, timestamp, body) VALUES (?, ?, ?, ?)",
                       arguments: [runID, kind.name, time, body])
        notifications.topics.insert(.workflowTasks)
    }

    static func hasInbox(_ db: Database, runID: String, after id: Int64?) throws -> Bool {
        try db.cachedValue(Bool.self, sql: "SELECT EXISTS (SELECT 1 FROM run_inbox WHERE run_id = ? AND id > ?)",
                          arguments: [runID, id ?? 0]) ?? false
    }

    static func inbox(_ db: Database, runID: String) throws -> [InboxEvent] {
        try db.cachedRows(sql: "SELECT id, timestamp, body FROM run_inbox WHERE run_id = ? ORDER BY id", arguments: [runID])
            .map { InboxEvent(id: $0["id"], timestamp: Date(timeIntervalSince1970: $0["timestamp"]), kind: try EventCodec.decode($0["body"])) }
    }

    static func history(_ db: Database, runID: String) throws -> [HistoryEvent] {
        try db.cachedRows(sql: "SELECT event_id, timestamp, body FROM history_events WHERE run_id = ? ORDER BY event_id",
                         arguments: [runID])
            .map { HistoryEvent(id: $0["event_id"], timestamp: Date(timeIntervalSince1970: $0["timestamp"]), kind: try EventCodec.decode($0["body"])) }
    }

    /// Drops what a closing run was waiting on, withdrawing its pending approvals if it has any.
    static func deletePendingWork(_ db: Database, runID: String, withdrawingApprovals: Bool, now: Date) throws {
        if withdrawingApprovals { try withdrawApprovals(db, runID: runID, now: now) }
        try db.executeCached(sql: "DELETE FROM activity_tasks WHERE run_id = ?", arguments: [runID])
        try db.executeCached(sql: "DELETE FROM timers WHERE run_id = ?", arguments: [runID])
        try db.executeCached(sql: "DELETE FROM run_inbox WHERE run_id = ?", arguments: [runID])
    }

    /// Deletes the attempt's row if its lease is still held. - Returns: whether it was.
    static func takeLeasedActivity(_ db: Database, _ report: ActivityReport) throws -> Bool {
        try db.executeCached(sql: "DELETE FROM activity_tasks WHERE run_id = ? AND seq = ? AND lease_token = ?",
                             arguments: [report.runID, report.seq, report.leaseToken])
        return db.changesCount > 0
    }

    /// Records an attempt's outcome under its lease. - Returns: `false` if the lease was no longer held.
    static func recordActivityOutcome(_ db: Database, _ report: ActivityReport, body: Data?, notifications: inout StoreNotifications) throws -> Bool {
        switch report.outcome {
        case .retry(let failure, let retryAt):
            try db.executeCached(sql: """
                UPDATE activity_tasks SET lease_owner = NULL, lease_token = NULL, visible_at = ?, last_error = ?
                WHERE run_id = ? AND seq = ? AND lease_token = ?
                """, arguments: [retryAt.timeIntervalSince1970, failure.description, report.runID, report.seq, report.leaseToken])
            guard db.changesCount > 0 else { return false }
            notifications.topics.insert(.activityTasks)
        case .released(let reason):
            try db.executeCached(sql: """
                UPDATE activity_tasks SET lease_owner = NULL, lease_token = NULL, visible_at = ?, attempt = attempt - 1, last_error = ?
                WHERE run_id = ? AND seq = ? AND lease_token = ?
                """, arguments: [report.now.timeIntervalSince1970, reason.description, report.runID, report.seq, report.leaseToken])
            guard db.changesCount > 0 else { return false }
            notifications.topics.insert(.activityTasks)
        case .completed, .failed:
            guard try takeLeasedActivity(db, report) else { return false }
            try addToInbox(db, runID: report.runID, kind: report.event!, body: body!, now: report.now, notifications: &notifications)
        }
        return true
    }

    /// Appends the task's events and writes the rows they imply. - Returns: the new task version.
    static func commit(_ db: Database, _ prepared: PreparedCompletion, run: RunFence, notifications: inout StoreNotifications) throws -> Int {
        let completion = prepared.completion
        let runID = completion.runID
        let now = completion.now.timeIntervalSince1970
        let insertEvent = try db.cachedStatement(sql: "INSERT INTO history_events (run_id, event_id, kind, timestamp, body) VALUES (?, ?, ?, ?, ?)")
        for (index, event) in completion.events.enumerated() {
            try insertEvent.execute(arguments: [runID, run.historyLength + index + 1, event.kind.name,
                                                event.timestamp.timeIntervalSince1970, prepared.bodies[index]])
        }
        if let consumed = completion.consumedInboxThrough, run.hasInbox {
            try db.executeCached(sql: "DELETE FROM run_inbox WHERE run_id = ? AND id <= ?", arguments: [runID, consumed])
        }
        let newVersion = run.taskVersion + 1
        let historyLength = run.historyLength + completion.events.count
        if let closing = prepared.plan.closing {
            try db.executeCached(sql: """
                UPDATE workflow_runs SET status = ?, result = ?, failure = ?, status_reason = ?, closed_at = ?, updated_at = ?,
                    history_length = ?, task_version = ?, needs_task = 0, task_ready_at = NULL,
                    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0
                WHERE run_id = ?
                """, arguments: [closing.status.rawValue, closing.result?.data, prepared.closingFailure, closing.reason, now, now,
                                 historyLength, newVersion, runID])
            try deletePendingWork(db, runID: runID, withdrawingApprovals: prepared.plan.withdrawsApprovals, now: completion.now)
            notifications.closedRuns.append(runID)
            return newVersion
        }
        let insertActivity = try db.cachedStatement(sql: """
            INSERT INTO activity_tasks (run_id, seq, workflow_id, activity_name, input, idempotency_key, options, start_to_close,
                                        attempt, scheduled_at, visible_at, lease_owner, lease_token, task_queue)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE(?, (SELECT task_queue FROM workflow_runs WHERE run_id = ?)))
            """)
        for activity in prepared.plan.activities {
            let lease = completion.eagerLeases[activity.seq]
            try insertActivity.execute(arguments: [
                runID, activity.seq, completion.workflowID, activity.name, activity.input.data, activity.idempotencyKey,
                prepared.encodedOptions[activity.seq], activity.options.attemptLease?.seconds,  // column start_to_close: the attempt lease
                lease == nil ? 0 : 1, activity.scheduledAt.timeIntervalSince1970,
                lease?.expiresAt.timeIntervalSince1970 ?? now, lease?.owner, lease?.token, activity.options.taskQueue, runID,
            ])
            if lease == nil { notifications.topics.insert(.activityTasks) }
        }
        for timer in prepared.plan.timers {
            try db.executeCached(sql: "INSERT INTO timers (run_id, seq, fire_at) VALUES (?, ?, ?)",
                           arguments: [runID, timer.seq, timer.fireAt.timeIntervalSince1970])
            notifications.topics.insert(.timers)
        }
        for seq in prepared.plan.cancelledTimers {
            try db.executeCached(sql: "DELETE FROM timers WHERE run_id = ? AND seq = ?", arguments: [runID, seq])
        }
        if !prepared.plan.approvals.isEmpty {
            try insertApprovals(db, prepared.plan, runID: runID)
            notifications.topics.insert(.timers)
        }
        if prepared.plan.withdrawsApprovals { try withdrawApprovals(db, runID: runID, now: completion.now) }
        let pending = try run.hasInbox && hasInbox(db, runID: runID, after: completion.consumedInboxThrough)
        try db.executeCached(sql: """
            UPDATE workflow_runs SET history_length = ?, task_version = ?, updated_at = ?, needs_task = ?,
                task_ready_at = ?, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0
            WHERE run_id = ?
            """, arguments: [historyLength, newVersion, now, pending, pending ? now : nil, runID])
        if let reason = prepared.plan.compensationFailure {
            // Its own statement: setting the indexed status column on every commit costs index writes.
            try db.executeCached(sql: "UPDATE workflow_runs SET status = 'compensationFailed', status_reason = ? WHERE run_id = ?",
                                 arguments: [reason, runID])
        }
        if pending { notifications.topics.insert(.workflowTasks) }
        return newVersion
    }

    static func run(from row: Row) throws -> WorkflowRun {
        WorkflowRun(
            workflowID: row["workflow_id"], runID: row["run_id"], workflowType: row["workflow_type"],
            status: RunStatus(rawValue: row["status"]) ?? .running, input: Payload(data: row["input"]),
            result: (row["result"] as Data?).map(Payload.init(data:)),
            failure: try (row["failure"] as Data?).map { try EventCodec.decode(attribute: ErrorInfo.self, from: $0) },
            statusReason: row["status_reason"], createdAt: Date(timeIntervalSince1970: row["created_at"]),
            updatedAt: Date(timeIntervalSince1970: row["updated_at"]),
            closedAt: (row["closed_at"] as Double?).map(Date.init(timeIntervalSince1970:)), historyLength: row["history_length"])
    }
}
