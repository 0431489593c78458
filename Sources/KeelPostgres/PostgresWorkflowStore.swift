import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import WorkflowRuntime

/// The production store: PostgreSQL through a pooled `PostgresClient`, shared by any number of
/// worker and CLI processes.
///
/// Work is claimed with `FOR UPDATE SKIP LOCKED` and leases; operations that touch a run lock its
/// row first (`FOR UPDATE`), so a signal and a closing task cannot pass each other. After each
/// commit that creates work, the transaction sends `NOTIFY keel_events`; every store listens on
/// that channel and wakes its process's workers at once (polling remains as a safety net). When
/// the server restarts or a connection drops, the pool reconnects and the listener resubscribes.
///
/// The store is a `Service`: run it (``run()``) for as long as it is used, e.g. with
/// ``withRunning(configuration:logger:_:)``.
package final class PostgresWorkflowStore: WorkflowStore, Service {
    package let notifier = WorkNotifier()
    /// The pooled client; activities of this process may share it.
    package let client: PostgresClient
    let logger: Logger
    private static let channel = "keel_events"

    /// - Parameters:
    ///   - configuration: server, credentials and pool size (see README: each worker uses up to
    ///     `maximumConnections` connections, plus one for LISTEN).
    package init(configuration: PostgresClient.Configuration, logger: Logger) {
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
    }

    /// Runs the connection pool and the LISTEN loop until cancelled.
    package func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.client.run() }
            group.addTask { await self.listen() }
        }
    }

    /// Receives `NOTIFY keel_events` and wakes this process's waiters; resubscribes after errors.
    private func listen() async {
        while !Task.isCancelled {
            do {
                try await client.withLiveConnection { [self] connection in
                    try await connection.listen(on: Self.channel) { notifications in
                        // Work may have appeared while no one listened.
                        for topic in WorkNotifier.Topic.allCases { notifier.notify(topic) }
                        for try await notification in notifications {
                            deliver(notification.payload)
                        }
                    }
                }
            } catch {
                // On shutdown the pool closes the connection just before this task sees its
                // cancellation: wait first, and only report an interruption that outlives it.
                try? await Task.sleep(for: .seconds(1))
                if Task.isCancelled { return }
                logger.warning("PostgreSQL notifications interrupted; reconnecting", metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }

    private func deliver(_ payload: String) {
        switch payload {
        case "w": notifier.notify(.workflowTasks)
        case "a": notifier.notify(.activityTasks)
        case "t": notifier.notify(.timers)
        default:
            if payload.hasPrefix("c:") { notifier.runClosed(String(payload.dropFirst(2))) }
        }
    }

    // MARK: - Transactions

    /// Runs `body` in a transaction; after it commits, wakes waiters here and (by NOTIFY) elsewhere.
    /// `body` is escaping because work caught on a closing connection is abandoned, not awaited
    /// (see ``PostgresClient/withLiveConnection(_:)``); it fails with `.databaseUnreachable`.
    func transaction<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection, inout StoreNotifications) async throws -> T
    ) async throws -> T {
        let logger = self.logger
        let (value, notifications) = try await mapErrors {
            try await client.withLiveConnection { connection in
                try await Self.transaction(on: connection, logger: logger, body)
            }
        }
        notifications.deliver(to: notifier)
        return value
    }

    /// `BEGIN`, `body`, `NOTIFY` for the work it created, `COMMIT` (or `ROLLBACK` if it throws).
    private static func transaction<T: Sendable>(
        on connection: PostgresConnection, logger: Logger, _ body: (PostgresConnection, inout StoreNotifications) async throws -> T
    ) async throws -> (T, StoreNotifications) {
        try await connection.withTransaction(logger: logger) { connection -> (T, StoreNotifications) in
            var notifications = StoreNotifications()
            let value = try await body(connection, &notifications)
            var payloads = notifications.topics.map { topic in
                switch topic {
                case .workflowTasks: "w"
                case .activityTasks: "a"
                case .timers: "t"
                }
            }
            payloads += notifications.closedRuns.map { "c:\($0)" }
            if !payloads.isEmpty {
                try await connection.query("SELECT pg_notify(\(Self.channel), p) FROM unnest(\(payloads)::text[]) AS p", logger: logger)
            }
            return (value, notifications)
        }
    }

    /// Runs `body` with a pooled connection, outside a transaction (as ``transaction(_:)``, it fails
    /// rather than hangs if the connection closes).
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await mapErrors { try await client.withLiveConnection(body) }
    }

    /// Turns connection failures into ``KeelError/Code/databaseUnreachable``; keeps Keel's own errors.
    private func mapErrors<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch {
            throw Self.keelError(for: error)
        }
    }

    private static func keelError(for error: Error) -> Error {
        switch error {
        case let error as KeelError: return error
        case is CancellationError: return error
        case let error as PostgresTransactionError:
            return keelError(for: error.closureError ?? error.commitError ?? error.beginError ?? error.rollbackError ?? error)
        case let error as PSQLError:
            switch error.code {
            case .server, .queryCancelled:
                return KeelError(.storage, "PostgreSQL: \(error.serverInfo?[.message] ?? String(reflecting: error))")
            default:
                return KeelError(.databaseUnreachable, "PostgreSQL unreachable (\(error.code))")
            }
        default:
            return KeelError(.databaseUnreachable, "PostgreSQL unreachable: \(error)")
        }
    }

    /// Opens and closes one direct connection, with the pool's settings, retrying until `timeout`
    /// while the server cannot be reached or is starting up. A server that refuses the session
    /// (unknown role or database, wrong password, no permission) is reported at once with its own
    /// message: the pool would only retry such a connection until the time ran out.
    /// - Throws: ``KeelError`` `.databaseUnreachable`.
    package static func checkServerAccepts(_ configuration: PostgresConnection.Configuration, within timeout: Duration,
                                           location: String, logger: Logger) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError = "no answer"
        while true {
            try Task.checkCancellation()
            let remaining = deadline - ContinuousClock.now
            let outcome = await withTaskGroup(of: Result<PostgresConnection, any Error>?.self) { group in
                group.addTask {
                    do { return .success(try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)) } catch {
                        return .failure(error)
                    }
                }
                group.addTask {
                    try? await Task.sleep(for: remaining)
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                // A connection made just as the time ran out is closed, not leaked.
                while let late = await group.next() {
                    if case .success(let connection)? = late { try? await connection.close() }
                }
                return first
            }
            switch outcome {
            case .success(let connection)?:
                try? await connection.close()
                return
            case .failure(let error as PSQLError)? where error.code == .server:
                let message = error.serverInfo?[.message] ?? "refused"
                let state = error.serverInfo?[.sqlState] ?? ""
                // 28xxx: role or password refused; 3D000: no such database; 42501: no CONNECT permission.
                if state.hasPrefix("28") || state == "3D000" || state == "42501" {
                    throw KeelError(.databaseUnreachable, "PostgreSQL at \(location) refused the connection: \(message)")
                }
                lastError = message  // e.g. the server is starting up or has too many clients
            case .failure(let error)?:
                lastError = (error as? PSQLError).map { "\($0.code)" + ($0.underlying.map { ": \($0)" } ?? "") } ?? "\(error)"
            case nil:
                break
            }
            guard ContinuousClock.now + .milliseconds(200) < deadline else {
                throw KeelError(.databaseUnreachable, "database unreachable: no answer from \(location) within \(timeout) (last error: \(lastError))")
            }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    // MARK: - Migrations

    /// The advisory lock concurrent `migrate` calls take on the database (any fixed number unique to Keel).
    static let migrationLockID: Int64 = 7_426_001

    /// Applies the pending migrations in one transaction, under an advisory lock, so concurrent
    /// callers apply each migration once. Migrations are exempt from the session's statement timeout.
    /// - Returns: the names this call applied (empty when another process had applied them).
    @discardableResult
    package func migrate() async throws -> [String] {
        let migrations = Self.migrations
        return try await transaction { [self] connection, _ in
            try await connection.query("SET LOCAL statement_timeout = 0", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLockID))", logger: logger)
            try await connection.query("""
                CREATE TABLE IF NOT EXISTS keel_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger)
            let applied = try await Self.appliedMigrations(connection, logger: logger)
            var appliedNow: [String] = []
            for migration in migrations where !applied.contains(migration.name) {
                for statement in Self.statements(of: migration.sql) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO keel_migrations (name) VALUES (\(migration.name))", logger: logger)
                appliedNow.append(migration.name)
            }
            return appliedNow
        }
    }

    package func pendingMigrations() async throws -> [String] {
        let migrations = Self.migrations.map(\.name)
        let applied = try await read { [self] connection in
            let exists = try await connection.query("SELECT to_regclass('keel_migrations') IS NOT NULL", logger: logger)
                .collect().first?.decode(Bool.self) ?? false
            return exists ? try await Self.appliedMigrations(connection, logger: logger) : []
        }
        return migrations.filter { !applied.contains($0) }
    }

    /// The statements of a migration file (`;` at a line's end ends one; `--` lines are comments).
    static func statements(of sql: String) -> [String] {
        let lines = sql.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.trimmingCharacters(in: .whitespaces).hasPrefix("--") }
        return lines.joined(separator: "\n").components(separatedBy: ";\n")
            .map { $0.trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(in: CharacterSet(charactersIn: ";")) }
            .filter { !$0.isEmpty }
    }

    private static func appliedMigrations(_ connection: PostgresConnection, logger: Logger) async throws -> Set<String> {
        Set(try await connection.query("SELECT name FROM keel_migrations", logger: logger).collect().map { try $0.decode(String.self) })
    }

    // MARK: - Client operations

    package func startWorkflow(_ request: StartWorkflowRequest) async throws -> StartWorkflowResult {
        let body = try EventCodec.encode(.workflowStarted(workflowType: request.workflowType, workflowID: request.workflowID, input: request.input))
        let firstTask = try request.firstTask.map(PreparedCompletion.init)
        return try await transaction { [self] connection, notifications in
            let now = request.now.timeIntervalSince1970
            let needsTask = firstTask == nil
            let readyAt: Double? = needsTask ? now : nil
            let inserted = try await connection.query("""
                INSERT INTO workflow_runs (run_id, workflow_id, workflow_type, status, input, created_at, updated_at,
                                           history_length, needs_task, task_ready_at, task_queue)
                VALUES (\(request.runID), \(request.workflowID), \(request.workflowType), 'running', \(request.input.data),
                        \(now), \(now), 1, \(needsTask), \(readyAt), \(request.taskQueue))
                ON CONFLICT (workflow_id) WHERE status IN \(unescaped: RunStatus.openSQLList) DO NOTHING
                RETURNING run_id
                """, logger: logger).collect()
            guard !inserted.isEmpty else {
                let existing = try await connection.query("""
                    SELECT run_id FROM workflow_runs WHERE workflow_id = \(request.workflowID) AND status IN \(unescaped: RunStatus.openSQLList)
                    """, logger: logger).collect().first?.decode(String.self)
                guard let existing else { throw KeelError(.storage, "workflow '\(request.workflowID)' changed during its start; retry") }
                return StartWorkflowResult(runID: existing, created: false)
            }
            try await connection.query("""
                INSERT INTO history_events (run_id, event_id, kind, timestamp, body)
                VALUES (\(request.runID), 1, 'workflowStarted', \(now), \(body))
                """, logger: logger)
            if let firstTask {
                _ = try await commit(connection, firstTask, run: .started, notifications: &notifications)
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
        return try await transaction { [self] connection, notifications in
            let runID = try await lockOpenRun(connection, workflowID: request.workflowID, action: "signal '\(request.name)'")
            if let requestID = request.requestID {
                let inserted = try await connection.query("""
                    INSERT INTO signal_requests (run_id, request_id, received_at, fingerprint)
                    VALUES (\(runID), \(requestID), \(request.now.timeIntervalSince1970), \(fingerprint))
                    ON CONFLICT DO NOTHING RETURNING 1
                    """, logger: logger).collect()
                if inserted.isEmpty {
                    let earlier = try await connection.query("""
                        SELECT fingerprint FROM signal_requests WHERE run_id = \(runID) AND request_id = \(requestID)
                        """, logger: logger).collect().first?.decode(String?.self) ?? nil
                    if let earlier, earlier != fingerprint { throw request.reusedRequestIDError(requestID) }
                    return .duplicate(runID: runID)
                }
            }
            try await addToInbox(connection, runID: runID, kind: kind, body: body, now: request.now, notifications: &notifications)
            return .delivered(runID: runID)
        }
    }

    package func requestCancellation(workflowID: String, reason: String?, now: Date) async throws -> String {
        let kind = HistoryEvent.Kind.cancelRequested(reason: reason)
        let body = try EventCodec.encode(kind)
        return try await transaction { [self] connection, notifications in
            let runID = try await lockOpenRun(connection, workflowID: workflowID, action: "cancel")
            try await addToInbox(connection, runID: runID, kind: kind, body: body, now: now, notifications: &notifications)
            return runID
        }
    }

    package func terminate(workflowID: String, reason: String, now: Date) async throws -> String {
        let body = try EventCodec.encode(.workflowTerminated(reason: reason))
        return try await transaction { [self] connection, notifications in
            let runID = try await lockOpenRun(connection, workflowID: workflowID, action: "terminate")
            let time = now.timeIntervalSince1970
            try await connection.query("""
                INSERT INTO history_events (run_id, event_id, kind, timestamp, body)
                SELECT run_id, history_length + 1, 'workflowTerminated', \(time), \(body) FROM workflow_runs WHERE run_id = \(runID)
                """, logger: logger)
            try await connection.query("""
                UPDATE workflow_runs SET status = 'terminated', status_reason = \(reason), closed_at = \(time), updated_at = \(time),
                    history_length = history_length + 1, task_version = task_version + 1, needs_task = FALSE,
                    task_ready_at = NULL, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0
                WHERE run_id = \(runID)
                """, logger: logger)
            try await deletePendingWork(connection, runID: runID, withdrawingApprovals: true, now: now)
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
        return try await transaction { [self] connection, _ in
            let rows = try await connection.query("""
                WITH ready AS (
                    SELECT run_id FROM workflow_runs
                    WHERE needs_task AND status = 'running' AND task_ready_at <= \(time) AND task_queue = ANY(\(taskQueues))
                    ORDER BY task_ready_at LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED)
                UPDATE workflow_runs AS r SET lease_owner = \(owner), lease_token = \(token), lease_expires_at = \(expiry),
                    task_ready_at = \(expiry), task_claims = r.task_claims + 1
                FROM ready WHERE r.run_id = ready.run_id
                RETURNING r.run_id, r.workflow_id, r.workflow_type, r.task_version, r.task_claims
                """, logger: logger).collect()
            var tasks: [WorkflowTask] = []
            for row in rows {
                let (runID, workflowID, type, version, claims) = try row.decode((String, String, String, Int, Int).self)
                do {
                    let history = cachedTaskVersion(runID) == version ? nil : try await Self.history(connection, runID: runID, logger: logger)
                    tasks.append(WorkflowTask(runID: runID, workflowID: workflowID, workflowType: type, leaseToken: token, taskVersion: version,
                                              history: history, inbox: try await inbox(connection, runID: runID), claims: claims))
                } catch let error as KeelError where error.code == .storage {  // only EventCodec's: the transaction is still usable
                    // One undecodable row must not stop every claim: park its run, go on with the others.
                    try await connection.query("""
                        UPDATE workflow_runs SET status = 'blocked', status_reason = \(undecodableHistoryReason(runID: runID, error: error)),
                            updated_at = \(time), lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0
                        WHERE run_id = \(runID) AND status = 'running'
                        """, logger: logger)
                }
            }
            return tasks
        }
    }

    package func completeWorkflowTask(_ completion: WorkflowTaskCompletion) async throws -> WorkflowTaskCommitResult {
        let prepared = try PreparedCompletion(completion)
        return try await transaction { [self] connection, notifications in
            guard let run = try await lockRun(connection, runID: completion.runID), run.admits(completion) else {
                return .rejected(reason: "the workflow task's lease was lost (another worker took the run over, or it closed)")
            }
            if prepared.plan.closing != nil, run.hasInbox,
               try await hasInbox(connection, runID: completion.runID, after: completion.consumedInboxThrough) {
                try await connection.query("""
                    UPDATE workflow_runs SET lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0,
                        task_ready_at = \(completion.now.timeIntervalSince1970)
                    WHERE run_id = \(completion.runID)
                    """, logger: logger)
                notifications.topics.insert(.workflowTasks)
                return .rejected(reason: "an event arrived while the task was closing the run")
            }
            return .committed(taskVersion: try await commit(connection, prepared, run: run, notifications: &notifications))
        }
    }

    package func blockRun(runID: String, leaseToken: Int64, reason: String, now: Date) async throws {
        try await transaction { [self] connection, _ in
            _ = try await connection.query("""
                UPDATE workflow_runs SET status = 'blocked', status_reason = \(reason), updated_at = \(now.timeIntervalSince1970),
                    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0
                WHERE run_id = \(runID) AND lease_token = \(leaseToken) AND status = 'running'
                """, logger: logger)
        }
    }

    package func unblockRuns(now: Date) async throws -> Int {
        try await transaction { [self] connection, notifications in
            let rows = try await connection.query("""
                UPDATE workflow_runs SET status = 'running', status_reason = NULL, needs_task = TRUE,
                    task_ready_at = \(now.timeIntervalSince1970), task_version = task_version + 1, task_claims = 0
                WHERE status = 'blocked' RETURNING 1
                """, logger: logger).collect()
            if !rows.isEmpty { notifications.topics.insert(.workflowTasks) }
            return rows.count
        }
    }

    // MARK: - Activity tasks

    package func claimActivityTasks(owner: String, limit: Int, defaultLease: Duration, now: Date,
                                   taskQueues: [String]) async throws -> [ActivityTask] {
        let token = Int64.random(in: 1...Int64.max)
        let time = now.timeIntervalSince1970
        return try await transaction { [self] connection, notifications in
            let rows = try await connection.query("""
                WITH due AS (
                    SELECT id FROM activity_tasks WHERE visible_at <= \(time) AND task_queue = ANY(\(taskQueues))
                    ORDER BY visible_at LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED)
                UPDATE activity_tasks AS a SET lease_owner = \(owner), lease_token = \(token), attempt = a.attempt + 1,
                    visible_at = \(time) + COALESCE(a.start_to_close, \(defaultLease.seconds))
                FROM due WHERE a.id = due.id
                RETURNING a.run_id, a.workflow_id, a.seq, a.activity_name, a.input, a.idempotency_key, a.options, a.attempt,
                          a.scheduled_at, a.heartbeat_details
                """, logger: logger).collect()
            var tasks: [ActivityTask] = []
            for row in rows {
                let (runID, workflowID, seq, name, input, key, storedOptions, attempt, scheduledAt, details) =
                    try row.decode((String, String, Int, String, Data, String, Data, Int, Double, Data?).self)
                let options: ActivityOptions
                do {
                    options = try EventCodec.decode(attribute: ActivityOptions.self, from: storedOptions)
                } catch {
                    // One undecodable row must not stop every claim: its attempt fails for good, naming why.
                    let report = ActivityReport.undecodableRow(runID: runID, seq: seq, leaseToken: token, attempt: attempt, error: error, now: now)
                    _ = try await recordActivityOutcome(connection, report, body: try EventCodec.encode(report.event!),
                                                        notifications: &notifications)
                    continue
                }
                tasks.append(ActivityTask(runID: runID, workflowID: workflowID, seq: seq, activityName: name, input: Payload(data: input),
                                          idempotencyKey: key, options: options, attempt: attempt,
                                          scheduledAt: Date(timeIntervalSince1970: scheduledAt), leaseToken: token,
                                          heartbeatDetails: details.map(Payload.init(data:))))
            }
            return tasks
        }
    }

    package func reportActivity(_ report: ActivityReport) async throws -> Bool {
        let body = try report.event.map(EventCodec.encode)
        return try await transaction { [self] connection, notifications in
            try await recordActivityOutcome(connection, report, body: body, notifications: &notifications)
        }
    }

    package func reportActivityAndContinue(_ report: ActivityReport, continuation: WorkflowTaskCompletion) async throws -> FastPathResult {
        let body = try report.event.map(EventCodec.encode)
        let prepared = try PreparedCompletion(continuation)
        return try await transaction { [self] connection, notifications in
            guard let run = try await lockRun(connection, runID: report.runID),
                  run.admitsFastPath(continuation, now: report.now.timeIntervalSince1970) else {
                return try await recordActivityOutcome(connection, report, body: body, notifications: &notifications) ? .outcomeOnly : .stale
            }
            guard try await takeLeasedActivity(connection, report) else { return .stale }
            return .continued(taskVersion: try await commit(connection, prepared, run: run, notifications: &notifications))
        }
    }

    package func heartbeat(runID: String, seq: Int, leaseToken: Int64, details: Payload?, leaseUntil: Date) async throws -> Bool {
        try await transaction { [self] connection, _ in
            !(try await connection.query("""
                UPDATE activity_tasks SET visible_at = \(leaseUntil.timeIntervalSince1970),
                    heartbeat_details = COALESCE(\(details?.data), heartbeat_details)
                WHERE run_id = \(runID) AND seq = \(seq) AND lease_token = \(leaseToken) RETURNING 1
                """, logger: logger).collect().isEmpty)
        }
    }

    // MARK: - Timers

    package func fireDueTimers(now: Date, limit: Int) async throws -> Int {
        let time = now.timeIntervalSince1970
        return try await transaction { [self] connection, notifications in
            let due = try await connection.query("""
                DELETE FROM timers WHERE id IN (
                    SELECT id FROM timers WHERE fire_at <= \(time) ORDER BY fire_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING run_id, seq, purpose
                """, logger: logger).collect().map { try $0.decode((String, Int, String).self) }
            // Lock runs in one order, so concurrent firings cannot deadlock.
            for (runID, seq, purpose) in due.sorted(by: { ($0.0, $0.1) < ($1.0, $1.1) }) {
                let kind: HistoryEvent.Kind?
                if purpose == "approval" {
                    // The run's row before the approval's, in the order decisions and commits take them.
                    _ = try await lockRun(connection, runID: runID)
                    kind = try await expireApproval(connection, runID: runID, seq: seq, now: now)
                } else {
                    kind = .timerFired(seq: seq)
                }
                guard let kind else { continue }
                try await addToInbox(connection, runID: runID, kind: kind, body: try EventCodec.encode(kind), now: now,
                                     notifications: &notifications)
            }
            return due.count
        }
    }

    package func nextWakeUp() async throws -> Date? {
        try await read { [self] connection in
            try await connection.query("""
                SELECT MIN(t) FROM (
                    SELECT MIN(fire_at) AS t FROM timers
                    UNION ALL SELECT MIN(visible_at) FROM activity_tasks
                    UNION ALL SELECT MIN(task_ready_at) FROM workflow_runs WHERE needs_task AND status = 'running') AS due
                """, logger: logger).collect().first?.decode(Double?.self).map(Date.init(timeIntervalSince1970:))
        }
    }

    // MARK: - Queries

    private static let runColumns = """
        run_id, workflow_id, workflow_type, status, input, result, failure, status_reason, created_at, updated_at, closed_at, history_length
        """

    package func findRun(workflowID: String) async throws -> WorkflowRun? {
        try await read { [self] connection in
            try await connection.query("""
                SELECT \(unescaped: Self.runColumns) FROM workflow_runs WHERE workflow_id = \(workflowID)
                ORDER BY status IN \(unescaped: RunStatus.openSQLList) DESC, created_at DESC, run_id DESC LIMIT 1
                """, logger: logger).collect().first.map(Self.run(from:))
        }
    }

    package func run(runID: String) async throws -> WorkflowRun? {
        try await read { [self] connection in
            try await connection.query("SELECT \(unescaped: Self.runColumns) FROM workflow_runs WHERE run_id = \(runID)", logger: logger)
                .collect().first.map(Self.run(from:))
        }
    }

    package func listRuns(_ query: RunQuery) async throws -> [WorkflowRun] {
        let afterTime = query.after?.createdAt.timeIntervalSince1970
        let afterID = query.after?.runID
        return try await read { [self] connection in
            try await connection.query("""
                SELECT \(unescaped: Self.runColumns) FROM workflow_runs
                WHERE (\(query.status?.rawValue)::text IS NULL OR status = \(query.status?.rawValue))
                  AND (\(query.workflowType)::text IS NULL OR workflow_type = \(query.workflowType))
                  AND (\(afterTime)::double precision IS NULL OR (created_at, run_id) < (\(afterTime), \(afterID)))
                ORDER BY created_at DESC, run_id DESC LIMIT \(query.limit)
                """, logger: logger).collect().map(Self.run(from:))
        }
    }

    package func history(runID: String) async throws -> [HistoryEvent] {
        try await read { [self] connection in try await Self.history(connection, runID: runID, logger: logger) }
    }

    package func pendingWork(runID: String) async throws -> PendingWork {
        try await read { [self] connection in
            let activities = try await connection.query("""
                SELECT seq, activity_name, task_queue, attempt, visible_at, lease_owner, last_error FROM activity_tasks
                WHERE run_id = \(runID) ORDER BY seq
                """, logger: logger).collect().map { row in
                let (seq, name, queue, attempt, visibleAt, owner, lastError) =
                    try row.decode((Int, String, String, Int, Double, String?, String?).self)
                return PendingWork.Activity(seq: seq, activityName: name, taskQueue: queue, attempt: attempt,
                                            nextAttemptAt: Date(timeIntervalSince1970: visibleAt), leaseOwner: owner, lastError: lastError)
            }
            let timers = try await connection.query("SELECT seq, fire_at FROM timers WHERE run_id = \(runID) ORDER BY fire_at", logger: logger)
                .collect().map { row in
                    let (seq, fireAt) = try row.decode((Int, Double).self)
                    return PendingWork.Timer(seq: seq, fireAt: Date(timeIntervalSince1970: fireAt))
                }
            let inbox = try await inbox(connection, runID: runID).map {
                PendingWork.Inbox(kind: $0.kind.name, detail: EventCodec.summary(of: $0.kind), receivedAt: $0.timestamp)
            }
            return PendingWork(activities: activities, timers: timers, inbox: inbox)
        }
    }
}

// MARK: - Statements shared by the operations above

extension PostgresWorkflowStore {
    /// Locks the run's row for the rest of the transaction and reads what fencing needs.
    func lockRun(_ connection: PostgresConnection, runID: String) async throws -> RunFence? {
        guard let row = try await connection.query("""
            SELECT status, task_version, history_length, lease_token, lease_expires_at,
                   EXISTS (SELECT 1 FROM run_inbox WHERE run_inbox.run_id = workflow_runs.run_id)
            FROM workflow_runs WHERE run_id = \(runID) FOR UPDATE
            """, logger: logger).collect().first else { return nil }
        let (status, version, length, token, expiresAt, hasInbox) = try row.decode((String, Int, Int, Int64?, Double?, Bool).self)
        return RunFence(status: RunStatus(rawValue: status) ?? .running, taskVersion: version, historyLength: length,
                        leaseToken: token, leaseExpiresAt: expiresAt, hasInbox: hasInbox)
    }

    /// Locks the open run of `workflowID`. - Throws: `.workflowClosed` or `.workflowNotFound`.
    func lockOpenRun(_ connection: PostgresConnection, workflowID: String, action: String) async throws -> String {
        if let runID = try await connection.query("""
            SELECT run_id FROM workflow_runs WHERE workflow_id = \(workflowID) AND status IN \(unescaped: RunStatus.openSQLList) FOR UPDATE
            """, logger: logger).collect().first?.decode(String.self) {
            return runID
        }
        if let status = try await connection.query("""
            SELECT status FROM workflow_runs WHERE workflow_id = \(workflowID) ORDER BY created_at DESC LIMIT 1
            """, logger: logger).collect().first?.decode(String.self) {
            throw KeelError(.workflowClosed, "cannot \(action): workflow '\(workflowID)' is closed (\(status))")
        }
        throw KeelError(.workflowNotFound, "cannot \(action): no workflow with id '\(workflowID)'")
    }

    /// Marks the open run as needing a task (locking it) and queues the event; a closed run gets nothing.
    func addToInbox(_ connection: PostgresConnection, runID: String, kind: HistoryEvent.Kind, body: Data, now: Date,
                    notifications: inout StoreNotifications) async throws {
        let time = now.timeIntervalSince1970
        let updated = try await connection.query("""
            UPDATE workflow_runs SET task_ready_at = CASE WHEN needs_task THEN task_ready_at ELSE \(time) END,
                needs_task = TRUE, updated_at = \(time)
            WHERE run_id = \(runID) AND status IN \(unescaped: RunStatus.openSQLList) RETURNING 1
            """, logger: logger).collect()
        guard !updated.isEmpty else { return }
        try await connection.query("""
            INSERT INTO run_inbox (run_id, kind, timestamp, body) VALUES (\(runID), \(kind.name), \(time), \(body))
            """, logger: logger)
        notifications.topics.insert(.workflowTasks)
    }

    func hasInbox(_ connection: PostgresConnection, runID: String, after id: Int64?) async throws -> Bool {
        try await connection.query("SELECT EXISTS (SELECT 1 FROM run_inbox WHERE run_id = \(runID) AND id > \(id ?? 0))", logger: logger)
            .collect().first?.decode(Bool.self) ?? false
    }

    func inbox(_ connection: PostgresConnection, runID: String) async throws -> [InboxEvent] {
        try await connection.query("SELECT id, timestamp, body FROM run_inbox WHERE run_id = \(runID) ORDER BY id", logger: logger)
            .collect().map { row in
                let (id, timestamp, body) = try row.decode((Int64, Double, Data).self)
                return InboxEvent(id: id, timestamp: Date(timeIntervalSince1970: timestamp), kind: try EventCodec.decode(body))
            }
    }

    static func history(_ connection: PostgresConnection, runID: String, logger: Logger) async throws -> [HistoryEvent] {
        try await connection.query("SELECT event_id, timestamp, body FROM history_events WHERE run_id = \(runID) ORDER BY event_id",
                                   logger: logger)
            .collect().map { row in
                let (id, timestamp, body) = try row.decode((Int, Double, Data).self)
                return HistoryEvent(id: id, timestamp: Date(timeIntervalSince1970: timestamp), kind: try EventCodec.decode(body))
            }
    }

    /// Drops what a closing run was waiting on; its pending approvals are withdrawn.
    ///
    /// The caller holds the run's row lock. Rows another transaction holds (an activity outcome or
    /// a timer being recorded, which waits for the run's row) are skipped rather than waited for —
    /// waiting would deadlock; that transaction deletes its row itself and finds the run closed.
    func deletePendingWork(_ connection: PostgresConnection, runID: String, withdrawingApprovals: Bool, now: Date) async throws {
        if withdrawingApprovals { try await withdrawApprovals(connection, runID: runID, now: now) }
        try await connection.query("""
            DELETE FROM activity_tasks WHERE id IN (SELECT id FROM activity_tasks WHERE run_id = \(runID) FOR UPDATE SKIP LOCKED)
            """, logger: logger)
        try await connection.query("""
            DELETE FROM timers WHERE id IN (SELECT id FROM timers WHERE run_id = \(runID) FOR UPDATE SKIP LOCKED)
            """, logger: logger)
        try await connection.query("DELETE FROM run_inbox WHERE run_id = \(runID)", logger: logger)
    }

    /// Deletes the attempt's row if its lease is still held. - Returns: whether it was.
    func takeLeasedActivity(_ connection: PostgresConnection, _ report: ActivityReport) async throws -> Bool {
        !(try await connection.query("""
            DELETE FROM activity_tasks WHERE run_id = \(report.runID) AND seq = \(report.seq) AND lease_token = \(report.leaseToken) RETURNING 1
            """, logger: logger).collect().isEmpty)
    }

    func recordActivityOutcome(_ connection: PostgresConnection, _ report: ActivityReport, body: Data?,
                               notifications: inout StoreNotifications) async throws -> Bool {
        switch report.outcome {
        case .retry(let failure, let retryAt):
            let updated = try await connection.query("""
                UPDATE activity_tasks SET lease_owner = NULL, lease_token = NULL, visible_at = \(retryAt.timeIntervalSince1970),
                    last_error = \(failure.description)
                WHERE run_id = \(report.runID) AND seq = \(report.seq) AND lease_token = \(report.leaseToken) RETURNING 1
                """, logger: logger).collect()
            guard !updated.isEmpty else { return false }
            notifications.topics.insert(.activityTasks)
        case .released(let reason):
            let updated = try await connection.query("""
                UPDATE activity_tasks SET lease_owner = NULL, lease_token = NULL, visible_at = \(report.now.timeIntervalSince1970),
                    attempt = attempt - 1, last_error = \(reason.description)
                WHERE run_id = \(report.runID) AND seq = \(report.seq) AND lease_token = \(report.leaseToken) RETURNING 1
                """, logger: logger).collect()
            guard !updated.isEmpty else { return false }
            notifications.topics.insert(.activityTasks)
        case .completed, .failed:
            guard try await takeLeasedActivity(connection, report) else { return false }
            try await addToInbox(connection, runID: report.runID, kind: report.event!, body: body!, now: report.now, notifications: &notifications)
        }
        return true
    }

    /// Appends the task's events and writes the rows they imply. - Returns: the new task version.
    func commit(_ connection: PostgresConnection, _ prepared: PreparedCompletion, run: RunFence,
                notifications: inout StoreNotifications) async throws -> Int {
        let completion = prepared.completion
        let runID = completion.runID
        let now = completion.now.timeIntervalSince1970
        if !completion.events.isEmpty {
            let ids = completion.events.indices.map { run.historyLength + $0 + 1 }
            let kinds = completion.events.map(\.kind.name)
            let times = completion.events.map(\.timestamp.timeIntervalSince1970)
            let bodies = prepared.bodies.map { String(decoding: $0, as: UTF8.self) }
            try await connection.query("""
                INSERT INTO history_events (run_id, event_id, kind, timestamp, body)
                SELECT \(runID), id, kind, ts, convert_to(body, 'UTF8')
                FROM unnest(\(ids)::int[], \(kinds)::text[], \(times)::float8[], \(bodies)::text[]) AS e(id, kind, ts, body)
                """, logger: logger)
        }
        if let consumed = completion.consumedInboxThrough, run.hasInbox {
            try await connection.query("DELETE FROM run_inbox WHERE run_id = \(runID) AND id <= \(consumed)", logger: logger)
        }
        let newVersion = run.taskVersion + 1
        let historyLength = run.historyLength + completion.events.count
        if let closing = prepared.plan.closing {
            try await connection.query("""
                UPDATE workflow_runs SET status = \(closing.status.rawValue), result = \(closing.result?.data),
                    failure = \(prepared.closingFailure), status_reason = \(closing.reason), closed_at = \(now), updated_at = \(now),
                    history_length = \(historyLength), task_version = \(newVersion), needs_task = FALSE, task_ready_at = NULL,
                    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0
                WHERE run_id = \(runID)
                """, logger: logger)
            try await deletePendingWork(connection, runID: runID, withdrawingApprovals: prepared.plan.withdrawsApprovals,
                                        now: completion.now)
            notifications.closedRuns.append(runID)
            return newVersion
        }
        for activity in prepared.plan.activities {
            let lease = completion.eagerLeases[activity.seq]
            let attempt = lease == nil ? 0 : 1
            let visibleAt = lease?.expiresAt.timeIntervalSince1970 ?? now
            // The column start_to_close holds the attempt lease (ActivityOptions.attemptLease).
            try await connection.query("""
                INSERT INTO activity_tasks (run_id, seq, workflow_id, activity_name, input, idempotency_key, options, start_to_close,
                                            attempt, scheduled_at, visible_at, lease_owner, lease_token, task_queue)
                VALUES (\(runID), \(activity.seq), \(completion.workflowID), \(activity.name), \(activity.input.data),
                        \(activity.idempotencyKey), \(prepared.encodedOptions[activity.seq] ?? Data()),
                        \(activity.options.attemptLease?.seconds), \(attempt), \(activity.scheduledAt.timeIntervalSince1970),
                        \(visibleAt), \(lease?.owner), \(lease?.token),
                        COALESCE(\(activity.options.taskQueue)::text, (SELECT task_queue FROM workflow_runs WHERE run_id = \(runID))))
                """, logger: logger)
            if lease == nil { notifications.topics.insert(.activityTasks) }
        }
        for timer in prepared.plan.timers {
            try await connection.query("""
                INSERT INTO timers (run_id, seq, fire_at) VALUES (\(runID), \(timer.seq), \(timer.fireAt.timeIntervalSince1970))
                """, logger: logger)
            notifications.topics.insert(.timers)
        }
        for seq in prepared.plan.cancelledTimers {
            try await connection.query("DELETE FROM timers WHERE run_id = \(runID) AND seq = \(seq)", logger: logger)
        }
        if !prepared.plan.approvals.isEmpty {
            try await insertApprovals(connection, prepared.plan, runID: runID)
            notifications.topics.insert(.timers)
        }
        if prepared.plan.withdrawsApprovals { try await withdrawApprovals(connection, runID: runID, now: completion.now) }
        var pending = false
        if run.hasInbox {
            pending = try await hasInbox(connection, runID: runID, after: completion.consumedInboxThrough)
        }
        let readyAt: Double? = pending ? now : nil
        try await connection.query("""
            UPDATE workflow_runs SET history_length = \(historyLength), task_version = \(newVersion), updated_at = \(now),
                needs_task = \(pending), task_ready_at = \(readyAt), lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, task_claims = 0
            WHERE run_id = \(runID)
            """, logger: logger)
        if let reason = prepared.plan.compensationFailure {
            try await connection.query("""
                UPDATE workflow_runs SET status = 'compensationFailed', status_reason = \(reason) WHERE run_id = \(runID)
                """, logger: logger)
        }
        if pending { notifications.topics.insert(.workflowTasks) }
        return newVersion
    }

    static func run(from row: PostgresRow) throws -> WorkflowRun {
        let (runID, workflowID, type, status, input, result, failure, reason, createdAt, updatedAt, closedAt, length) =
            try row.decode((String, String, String, String, Data, Data?, Data?, String?, Double, Double, Double?, Int).self)
        return WorkflowRun(
            workflowID: workflowID, runID: runID, workflowType: type, status: RunStatus(rawValue: status) ?? .running,
            input: Payload(data: input), result: result.map(Payload.init(data:)),
            failure: try failure.map { try EventCodec.decode(attribute: ErrorInfo.self, from: $0) }, statusReason: reason,
            createdAt: Date(timeIntervalSince1970: createdAt), updatedAt: Date(timeIntervalSince1970: updatedAt),
            closedAt: closedAt.map(Date.init(timeIntervalSince1970:)), historyLength: length)
    }
}
