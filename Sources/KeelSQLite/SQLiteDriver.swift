import Foundation
import GRDB
import WorkflowRuntime

/// The embedded default backend: one SQLite file in WAL mode, shared safely by a daemon and CLI
/// processes (busy timeout; one writer at a time). The store's logic is ``SQLWorkflowStore``'s;
/// this driver opens the file, runs migrations, and runs the core's transactions.
///
/// Durability: `synchronous=FULL` by default, so nothing acknowledged is lost even on power
/// failure (each group commit syncs the WAL before its callers are answered).
/// ``SQLiteSynchronous/normal`` keeps the database consistent but may lose the last commits on
/// power failure (not on a process crash); choose it with `sqlite:PATH?synchronous=normal`.
///
/// Concurrent writes from this process are committed together (group commit).
package final class SQLiteDriver: SQLDriver {
    package let notifier = WorkNotifier()
    package let path: String
    package var dialect: SQLDialect { .sqlite }
    let pool: DatabasePool
    private let writer: BatchedWriter

    /// Opens the database file at `path`. Migrate it before use.
    /// - Parameter createIfMissing: whether a missing file is created. Directories are never
    ///   created: a missing one is reported, so a mistyped path creates nothing.
    /// - Throws: ``KeelError`` `.databaseUnreachable` naming the path (and the missing directory).
    package init(
        path: String, synchronous: SQLiteSynchronous = .full, busyTimeout: Duration = .seconds(30),
        createIfMissing: Bool = true
    ) throws {
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
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw KeelError(
                    .databaseUnreachable,
                    "no SQLite database at '\(path)': the directory '\(directory)' does not exist "
                        + "(Keel creates no directories; check the path)")
            }
            guard createIfMissing else {
                throw KeelError(
                    .databaseUnreachable,
                    "no SQLite database at '\(path)': check the path, or create the database by migrating it")
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
    private static func openPool(path: String, configuration: Configuration, busyTimeout: Duration) throws
        -> DatabasePool
    {
        let deadline = ContinuousClock.now + busyTimeout
        while true {
            do {
                return try DatabasePool(path: path, configuration: configuration)
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && ContinuousClock.now < deadline
            {
                Thread.sleep(forTimeInterval: 0.02)
            }
        }
    }

    // MARK: - Migrations

    /// Applies the pending migrations in one `IMMEDIATE` transaction: the check and the apply hold
    /// SQLite's write lock together, so concurrent processes apply each migration once. The
    /// bookkeeping is GRDB's `grdb_migrations` table, as in files migrated by earlier versions.
    /// - Returns: the names this call applied.
    package func migrate() async throws -> [String] {
        let migrations = Self.migrations
        return try await pool.writeWithoutTransaction { db in
            var appliedNow: [String] = []
            try db.inTransaction(.immediate) {
                try db.execute(sql: "CREATE TABLE IF NOT EXISTS grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY)")
                let applied = try String.fetchSet(db, sql: "SELECT identifier FROM grdb_migrations")
                for migration in migrations where !applied.contains(migration.name) {
                    try db.execute(sql: migration.sql)
                    try db.execute(
                        sql: "INSERT INTO grdb_migrations (identifier) VALUES (?)", arguments: [migration.name])
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
            try db.tableExists("grdb_migrations")
                ? try String.fetchSet(db, sql: "SELECT identifier FROM grdb_migrations") : []
        }
        return migrations.filter { !applied.contains($0) }
    }

    // MARK: - Transactions

    /// Runs `body` in the next group commit (in a savepoint of its own) and, once committed,
    /// delivers its notifications.
    package func runTransaction(
        _ body: @escaping @Sendable (any SQLConnection, inout StoreNotifications) async throws -> any Sendable
    ) async throws -> any Sendable {
        let (value, notifications) = try await writer.write { db in
            let connection = SQLiteConnection(db)
            return try ThreadConfinedTask.run { () async throws -> (any Sendable, StoreNotifications) in
                var notifications = StoreNotifications()
                let value = try await body(connection, &notifications)
                return (value, notifications)
            }
        }
        notifications.deliver(to: notifier)
        return value
    }

    package func runRead(_ body: @escaping @Sendable (any SQLConnection) async throws -> any Sendable) async throws
        -> any Sendable
    {
        try await pool.read { db in
            let connection = SQLiteConnection(db)
            return try ThreadConfinedTask.run { try await body(connection) }
        }
    }
}

/// GRDB's connection inside a transaction of ``SQLiteDriver``; statements are compiled once and
/// cached on the connection.
package struct SQLiteConnection: SQLConnection, @unchecked Sendable {
    // @unchecked: a `Database` is used only on the thread GRDB lent it on (see ThreadConfinedTask).
    private let db: Database

    init(_ db: Database) {
        self.db = db
    }

    package func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        let statement = try db.cachedStatement(sql: sql)
        let arguments = Self.arguments(binds)
        // A cursor reads each row in place; only its values are copied out.
        let cursor = try Row.fetchCursor(statement, arguments: arguments)
        var rows: [SQLRow] = []
        while let row = try cursor.next() {
            rows.append(SQLRow(row.databaseValues.map { $0.sqlValue }))
        }
        return rows
    }

    package func execute(_ sql: String, _ binds: [SQLValue]) async throws {
        try db.cachedStatement(sql: sql).execute(arguments: Self.arguments(binds))
    }

    /// The statement arguments of `binds`, typed: GRDB's untyped initializer (`[Any]`) casts each
    /// value dynamically, which once took a tenth of the writer's time.
    private static func arguments(_ binds: [SQLValue]) -> StatementArguments {
        let values: [(any DatabaseValueConvertible)?] = binds.map { $0.databaseValue }
        return StatementArguments(values)
    }

    package func changes(_ sql: String, _ binds: [SQLValue]) async throws -> Int {
        try await execute(sql, binds)
        return db.changesCount
    }
}

extension SQLValue {
    fileprivate var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .int(let value): value.databaseValue
        case .double(let value): value.databaseValue
        case .text(let value): value.databaseValue
        case .blob(let value): value.databaseValue
        case .bool(let value): value.databaseValue
        }
    }
}

extension DatabaseValue {
    fileprivate var sqlValue: SQLValue {
        switch storage {
        case .null: .null
        case .int64(let value): .int(value)
        case .double(let value): .double(value)
        case .string(let value): .text(value)
        case .blob(let value): .blob(value)
        }
    }
}

extension SQLWorkflowStore {
    /// A store over the SQLite database at `path` (see
    /// ``SQLiteDriver/init(path:synchronous:busyTimeout:createIfMissing:)``).
    package convenience init(
        sqlitePath path: String, synchronous: SQLiteSynchronous = .full,
        busyTimeout: Duration = .seconds(30), createIfMissing: Bool = true
    ) throws {
        self.init(
            driver: try SQLiteDriver(
                path: path, synchronous: synchronous, busyTimeout: busyTimeout,
                createIfMissing: createIfMissing))
    }

    /// The SQLite driver of a store on SQLite (`nil` for another backend).
    package var sqliteDriver: SQLiteDriver? { driver as? SQLiteDriver }
}
