import Foundation
import Logging
import PostgresNIO
import ServiceLifecycle
import WorkflowRuntime

/// The production backend: PostgreSQL through a pooled `PostgresClient`, shared by any number of
/// worker and CLI processes. The store's logic is ``SQLWorkflowStore``'s; this driver runs its
/// transactions, migrations and the notification listener.
///
/// Work is claimed with `FOR UPDATE SKIP LOCKED` and leases; operations that touch a run lock its
/// row first (`FOR UPDATE`). Writes are group-committed (``GroupCommit``): under load, writes of
/// many runs share one transaction. A transaction that creates work sends `NOTIFY keel_events`
/// once for all its writes; every process listens on that channel and wakes its workers at once
/// (polling remains as a safety net). When the server restarts or a connection drops, the pool
/// reconnects and the listener resubscribes.
///
/// The driver must run (``run()``) for as long as it is used, e.g. with
/// ``SQLWorkflowStore/withRunningPostgres(configuration:logger:_:)``.
package final class PostgresDriver: SQLDriver {
    package let notifier = WorkNotifier()
    /// The pooled client; activities of this process may share it.
    package let client: PostgresClient
    package var dialect: SQLDialect { .postgres }
    let logger: Logger
    private let groupCommit: GroupCommit
    private let statements: PreparedStatements
    /// The channel every process `LISTEN`s on; ``GroupCommit`` sends the `NOTIFY`s.
    static let channel = "keel_events"
    /// Marks this driver's `NOTIFY` payloads: its own writes wake its waiters directly (``runTransaction(_:)``),
    /// so the listener skips them when they come back from the server.
    let origin = String(UInt64.random(in: 0...UInt64.max), radix: 36)

    /// - Parameters:
    ///   - configuration: server, credentials and pool size (see README: each worker uses up to
    ///     `maximumConnections` connections, plus one for LISTEN).
    package init(configuration: PostgresClient.Configuration, logger: Logger) {
        client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.logger = logger
        statements = PreparedStatements()
        // Lanes leave most of the pool to claims, reads and activities.
        groupCommit = GroupCommit(
            client: client, statements: statements, origin: origin,
            maximumLanes: max(1, configuration.options.maximumConnections / 4), maximumBatch: 64, logger: logger)
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
                logger.warning(
                    "PostgreSQL notifications interrupted; reconnecting",
                    metadata: ["error": "\(String(reflecting: error))"])
            }
        }
    }

    /// The payloads of `notifications` on ``channel``, one per distinct topic or closed run, each
    /// after the sender's `origin` and a `/`: the wire format ``deliver(_:)`` reads.
    static func payloads(of notifications: StoreNotifications, origin: String) -> [String] {
        var payloads = notifications.topics.sorted { $0.rawValue < $1.rawValue }.map { topic in
            switch topic {
            case .workflowTasks: "w"
            case .activityTasks: "a"
            case .timers: "t"
            }
        }
        payloads += Set(notifications.closedRuns).sorted().map { "c:\($0)" }
        return payloads.map { "\(origin)/\($0)" }
    }

    /// Wakes this process's waiters for a payload another process sent (one without an origin
    /// comes from a Keel version before origins, during a rolling upgrade).
    private func deliver(_ sent: String) {
        var payload = sent[...]
        if let slash = sent.firstIndex(of: "/") {
            guard sent[..<slash] != origin else { return }
            payload = sent[sent.index(after: slash)...]
        }
        switch payload {
        case "w": notifier.notify(.workflowTasks)
        case "a": notifier.notify(.activityTasks)
        case "t": notifier.notify(.timers)
        default:
            if payload.hasPrefix("c:") { notifier.runClosed(String(payload.dropFirst(2))) }
        }
    }

    // MARK: - Transactions

    /// Runs `body` in the next group commit (``GroupCommit``); after it commits, wakes waiters
    /// here and (by NOTIFY) elsewhere.
    package func runTransaction(
        _ body: @escaping @Sendable (any SQLConnection, inout StoreNotifications) async throws -> any Sendable
    ) async throws -> any Sendable {
        let (value, notifications) = try await mapErrors { try await groupCommit.write(body) }
        notifications.deliver(to: notifier)
        return value
    }

    /// Runs the statements in the next group commit, or, when nothing else waits to be written,
    /// as one statement that commits by itself, its `NOTIFY` included (one round trip).
    package func runStatements(_ statements: [SQLStatement], notifications: StoreNotifications) async throws -> [Int] {
        let counts = try await mapErrors { try await groupCommit.write(statements, notifications: notifications) }
        notifications.deliver(to: notifier)
        return counts
    }

    package func runRead(_ body: @escaping @Sendable (any SQLConnection) async throws -> any Sendable) async throws
        -> any Sendable
    {
        let (logger, statements) = (self.logger, self.statements)
        return try await withConnection { connection in
            try await body(PostgresSQLConnection(connection: connection, statements: statements, logger: logger))
        }
    }

    /// Runs `body` in a transaction of its own (not group-committed; migrations use it).
    /// `body` is escaping because work caught on a closing connection is abandoned, not awaited
    /// (see ``PostgresClient/withLiveConnection(_:)``); it fails with `.databaseUnreachable`.
    func withTransaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T)
        async throws -> T
    {
        let logger = self.logger
        return try await mapErrors {
            try await client.withLiveConnection { connection in
                try await connection.withTransaction(logger: logger) { try await body($0) }
            }
        }
    }

    /// Runs `body` with a pooled connection, outside a transaction (as ``withTransaction(_:)``, it fails
    /// rather than hangs if the connection closes).
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws
        -> T
    {
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
        case is CancellationError, is CommitRequirementUnmet: return error
        case let error as PostgresTransactionError:
            return keelError(
                for: error.closureError ?? error.commitError ?? error.beginError ?? error.rollbackError ?? error)
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
    package static func checkServerAccepts(
        _ configuration: PostgresConnection.Configuration, within timeout: Duration,
        location: String, logger: Logger
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError = "no answer"
        while true {
            try Task.checkCancellation()
            let remaining = deadline - ContinuousClock.now
            let outcome = await withTaskGroup(of: Result<PostgresConnection, any Error>?.self) { group in
                group.addTask {
                    do {
                        return .success(
                            try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger))
                    } catch {
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
                    throw KeelError(
                        .databaseUnreachable, "PostgreSQL at \(location) refused the connection: \(message)")
                }
                lastError = message  // e.g. the server is starting up or has too many clients
            case .failure(let error)?:
                lastError =
                    (error as? PSQLError).map { "\($0.code)" + ($0.underlying.map { ": \($0)" } ?? "") } ?? "\(error)"
            case nil:
                break
            }
            guard ContinuousClock.now + .milliseconds(200) < deadline else {
                throw KeelError(
                    .databaseUnreachable,
                    "database unreachable: no answer from \(location) within \(timeout) (last error: \(lastError))")
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
    package func migrate() async throws -> [String] {
        let migrations = Self.migrations
        return try await withTransaction { [self] connection in
            try await connection.query("SET LOCAL statement_timeout = 0", logger: logger)
            try await connection.query("SELECT pg_advisory_xact_lock(\(Self.migrationLockID))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS keel_migrations (name TEXT PRIMARY KEY,
                    applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """, logger: logger)
            let applied = try await Self.appliedMigrations(connection, logger: logger)
            var appliedNow: [String] = []
            for migration in migrations where !applied.contains(migration.name) {
                for statement in Self.statements(of: migration.sql) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query(
                    "INSERT INTO keel_migrations (name) VALUES (\(migration.name))", logger: logger)
                appliedNow.append(migration.name)
            }
            return appliedNow
        }
    }

    package func pendingMigrations() async throws -> [String] {
        let migrations = Self.migrations.map(\.name)
        let applied = try await withConnection { [self] connection in
            let exists =
                try await connection.query("SELECT to_regclass('keel_migrations') IS NOT NULL", logger: logger)
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
            .map {
                $0.trimmingCharacters(in: .whitespacesAndNewlines).trimmingCharacters(
                    in: CharacterSet(charactersIn: ";"))
            }
            .filter { !$0.isEmpty }
    }

    private static func appliedMigrations(_ connection: PostgresConnection, logger: Logger) async throws -> Set<String>
    {
        Set(
            try await connection.query("SELECT name FROM keel_migrations", logger: logger).collect().map {
                try $0.decode(String.self)
            })
    }
}
