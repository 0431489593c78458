import Foundation

/// The seam between the store core and a database: a driver only opens transactions and runs the
/// statements the core composes. Every rule — what a commit writes, fencing, leases, inbox and
/// approval rules — lives in ``SQLWorkflowStore``, written once for every backend.
///
/// The core writes one SQL text per statement, with `?` placeholders, in the SQL that SQLite and
/// PostgreSQL share; where they differ it asks the ``SQLDialect``.
package protocol SQLDriver: Sendable {
    var dialect: SQLDialect { get }
    /// Wakes this process's workers when this process (or, with PostgreSQL, another) creates work.
    var notifier: WorkNotifier { get }

    /// Runs `body` in one transaction and, once it committed, delivers its notifications (to this
    /// process's waiters, and to other processes where the backend can). If `body` throws, nothing
    /// it wrote remains. (Not generic: a generic requirement would run unspecialized in the
    /// driver's module, looking up type metadata on every write; ``write(_:)`` restores the type.)
    func runTransaction(
        _ body: @escaping @Sendable (any SQLConnection, inout StoreNotifications) async throws -> any Sendable
    ) async throws -> any Sendable
    /// Runs `statements` (``SQLConnection/executeTogether(_:)``) in one transaction and, once
    /// committed, delivers `notifications`: a write that needs nothing read first, which a
    /// backend may send in fewer round trips than a transaction's body.
    /// - Returns: the statements' counts. - Throws: ``CommitRequirementUnmet`` as `executeTogether`
    ///   does; nothing was written then.
    func runStatements(_ statements: [SQLStatement], notifications: StoreNotifications) async throws -> [Int]
    /// Runs `body` on a connection, outside any write transaction.
    func runRead(_ body: @escaping @Sendable (any SQLConnection) async throws -> any Sendable) async throws
        -> any Sendable

    /// Applies the backend's pending migrations; concurrent callers apply each once.
    func migrate() async throws -> [String]
    func pendingMigrations() async throws -> [String]
}

extension SQLDriver {
    /// A transaction whose body runs the statements.
    package func runStatements(_ statements: [SQLStatement], notifications: StoreNotifications) async throws -> [Int] {
        try await write { connection, collected in
            collected.formUnion(notifications)
            return try await connection.executeTogether(statements)
        }
    }

    /// ``runTransaction(_:)`` with the body's result type.
    package func write<T: Sendable>(
        _ body: @escaping @Sendable (any SQLConnection, inout StoreNotifications) async throws -> T
    ) async throws -> T {
        // The cast cannot fail: the value is the one `body` returned.
        try await runTransaction { connection, notifications in try await body(connection, &notifications) } as! T
    }

    /// ``runRead(_:)`` with the body's result type.
    package func read<T: Sendable>(_ body: @escaping @Sendable (any SQLConnection) async throws -> T) async throws -> T
    {
        try await runRead { connection in try await body(connection) } as! T  // the value `body` returned
    }
}

/// A connection inside a driver's transaction (or read).
package protocol SQLConnection: Sendable {
    /// Runs one statement (`?` placeholders, bound in order) and returns its rows.
    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow]
    /// Runs one statement whose rows, if any, are not needed.
    func execute(_ sql: String, _ binds: [SQLValue]) async throws
    /// Runs one statement that changes rows and returns how many it changed. The statement ends
    /// with ``SQLDialect/countingChanges``: PostgreSQL counts the rows it returns, SQLite asks the
    /// connection (its `RETURNING` costs a temporary table per statement).
    func changes(_ sql: String, _ binds: [SQLValue]) async throws -> Int
    /// Runs statements that are independent of one another — none reads or writes a row that
    /// another of them writes — and whose rows are not needed. PostgreSQL runs them as one
    /// statement (each a data-modifying `WITH` query, all seeing the same snapshot): one round trip
    /// instead of one each. SQLite, in process, runs them one after another (the default).
    /// - Returns: for each statement, how many rows it changed if it ``SQLStatement/countsChanges``, else 0.
    /// - Throws: ``CommitRequirementUnmet`` when a statement that ``SQLStatement/isRequired``
    ///   changed no row; what the others did must then be rolled back with the transaction.
    @discardableResult
    func executeTogether(_ statements: [SQLStatement]) async throws -> [Int]
}

/// One statement of the core: SQL with `?` placeholders and the values bound to them, in order.
package struct SQLStatement: Sendable {
    package var sql: String
    package var binds: [SQLValue]
    /// Whether ``SQLConnection/executeTogether(_:)`` reports how many rows it changed; its SQL
    /// then ends with ``SQLDialect/countingChanges``, as for ``SQLConnection/changes(_:_:)``.
    package var countsChanges = false
    /// Whether the statements run with it stand only if it changes a row (a fence checked within
    /// the writes): it is counted, and ``SQLConnection/executeTogether(_:)`` throws
    /// ``CommitRequirementUnmet`` when it changes none. Required statements go first, so that on
    /// SQLite, which runs them in order, nothing after an unmet one runs.
    package var isRequired = false

    package init(_ sql: String, _ binds: [SQLValue], countsChanges: Bool = false, isRequired: Bool = false) {
        self.sql = sql
        self.binds = binds
        self.countsChanges = countsChanges || isRequired
        self.isRequired = isRequired
    }

    package init(_ sql: String, _ binds: any SQLBindable...) {
        self.init(sql, binds.map { $0.sqlValue })
    }
}

extension SQLConnection {
    /// Runs one statement and returns its rows.
    package func query(_ sql: String, _ binds: any SQLBindable...) async throws -> [SQLRow] {
        try await query(sql, binds.map { $0.sqlValue })
    }

    /// Runs one statement whose rows, if any, are not needed.
    package func execute(_ sql: String, _ binds: any SQLBindable...) async throws {
        try await execute(sql, binds.map { $0.sqlValue })
    }

    /// Runs one statement that changes rows and returns how many it changed.
    package func changes(_ sql: String, _ binds: any SQLBindable...) async throws -> Int {
        try await changes(sql, binds.map { $0.sqlValue })
    }

    /// Runs each statement in order.
    @discardableResult
    package func executeTogether(_ statements: [SQLStatement]) async throws -> [Int] {
        var changes: [Int] = []
        changes.reserveCapacity(statements.count)
        for statement in statements {
            if statement.countsChanges {
                let changed = try await self.changes(statement.sql, statement.binds)
                if statement.isRequired, changed == 0 { throw CommitRequirementUnmet() }
                changes.append(changed)
            } else {
                try await execute(statement.sql, statement.binds)
                changes.append(0)
            }
        }
        return changes
    }

    /// The first row of a statement's result, if any.
    package func row(_ sql: String, _ binds: any SQLBindable...) async throws -> SQLRow? {
        try await query(sql, binds.map { $0.sqlValue }).first
    }
}

/// A statement that ``SQLStatement/isRequired`` changed no row (see
/// ``SQLConnection/executeTogether(_:)``): the transaction must not commit. Drivers pass it
/// through unchanged.
package struct CommitRequirementUnmet: Error {
    package init() {}
}

/// Where the two SQL dialects differ in the statements the core writes.
package struct SQLDialect: Sendable {
    /// Appended to a `SELECT` of rows the transaction goes on to change: PostgreSQL locks them
    /// (`FOR UPDATE`); SQLite needs nothing, its write transaction excludes every other writer.
    package var lockRows: String
    /// Appended to a `SELECT` that picks work: PostgreSQL skips rows other transactions hold
    /// (`FOR UPDATE SKIP LOCKED`), so concurrent claimers take disjoint work without waiting.
    package var skipLocked: String
    /// The boolean literals (SQLite's partial indexes match `needs_task = 1`, not `TRUE`).
    package var `true`: String
    package var `false`: String
    /// Ends a statement run with ``SQLConnection/changes(_:_:)``.
    package var countingChanges: String
    /// `workflow_runs` as the statements that look for runs needing a task name it. SQLite is
    /// told to use the partial index of those runs (`workflow_runs_ready`): without statistics its
    /// planner prefers the index on status, which visits every running run — 10,000 waiting runs
    /// made each idle poll scan 10,000 rows.
    package var runsNeedingTask: String

    package static let sqlite = SQLDialect(
        lockRows: "", skipLocked: "", true: "1", false: "0", countingChanges: "",
        runsNeedingTask: "workflow_runs INDEXED BY workflow_runs_ready")
    package static let postgres = SQLDialect(
        lockRows: " FOR UPDATE", skipLocked: " FOR UPDATE SKIP LOCKED",
        true: "TRUE", false: "FALSE", countingChanges: " RETURNING 1", runsNeedingTask: "workflow_runs")

    /// `?, ?, ...`: `count` placeholders (at least one, so `IN (...)` stays valid SQL).
    package static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: max(1, count)).joined(separator: ", ")
    }
}

/// A value bound to a statement's placeholder or read from a result column.
package enum SQLValue: Sendable, Hashable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob(Data)
    case bool(Bool)
}

/// A Swift value that binds to a placeholder.
package protocol SQLBindable {
    var sqlValue: SQLValue { get }
}

extension SQLValue: SQLBindable { package var sqlValue: SQLValue { self } }
extension String: SQLBindable { package var sqlValue: SQLValue { .text(self) } }
extension Int: SQLBindable { package var sqlValue: SQLValue { .int(Int64(self)) } }
extension Int64: SQLBindable { package var sqlValue: SQLValue { .int(self) } }
extension Double: SQLBindable { package var sqlValue: SQLValue { .double(self) } }
extension Bool: SQLBindable { package var sqlValue: SQLValue { .bool(self) } }
extension Data: SQLBindable { package var sqlValue: SQLValue { .blob(self) } }
extension Date: SQLBindable {
    /// Times are stored as seconds since 1970 (REAL / double precision) on every backend.
    package var sqlValue: SQLValue { .double(timeIntervalSince1970) }
}
extension Optional: SQLBindable where Wrapped: SQLBindable {
    package var sqlValue: SQLValue { self?.sqlValue ?? .null }
}

/// One result row, its columns in the statement's order.
package struct SQLRow: Sendable {
    package var values: [SQLValue]

    package init(_ values: [SQLValue]) {
        self.values = values
    }

    /// Column `index` as `T`.
    /// - Throws: ``KeelError`` `.storage` when the column is missing or holds another type.
    package func get<T: SQLColumnDecodable>(_ index: Int, as type: T.Type = T.self) throws -> T {
        guard values.indices.contains(index) else {
            throw KeelError(.storage, "a stored row has no column \(index) (the schema does not match this version)")
        }
        return try T(sqlValue: values[index])
    }
}

/// A Swift value that a result column decodes to.
package protocol SQLColumnDecodable {
    init(sqlValue: SQLValue) throws
}

extension SQLValue {
    fileprivate func mismatch(_ expected: String) -> KeelError {
        KeelError(.storage, "a stored value is \(self), not \(expected) (corrupted, or written by another version)")
    }
}

extension String: SQLColumnDecodable {
    package init(sqlValue: SQLValue) throws {
        guard case .text(let value) = sqlValue else { throw sqlValue.mismatch("text") }
        self = value
    }
}

extension Int: SQLColumnDecodable {
    package init(sqlValue: SQLValue) throws {
        guard case .int(let value) = sqlValue, let int = Int(exactly: value) else {
            throw sqlValue.mismatch("an integer")
        }
        self = int
    }
}

extension Int64: SQLColumnDecodable {
    package init(sqlValue: SQLValue) throws {
        guard case .int(let value) = sqlValue else { throw sqlValue.mismatch("an integer") }
        self = value
    }
}

extension Double: SQLColumnDecodable {
    package init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .double(let value): self = value
        case .int(let value): self = Double(value)  // SQLite may hand back a whole REAL as an integer
        default: throw sqlValue.mismatch("a number")
        }
    }
}

extension Bool: SQLColumnDecodable {
    package init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .bool(let value): self = value
        case .int(let value): self = value != 0  // SQLite's booleans are integers
        default: throw sqlValue.mismatch("a boolean")
        }
    }
}

extension Data: SQLColumnDecodable {
    package init(sqlValue: SQLValue) throws {
        switch sqlValue {
        case .blob(let value): self = value
        case .text(let value): self = Data(value.utf8)  // SQLite keeps what was bound; older rows may be text
        default: throw sqlValue.mismatch("bytes")
        }
    }
}

extension Date: SQLColumnDecodable {
    package init(sqlValue: SQLValue) throws {
        self = Date(timeIntervalSince1970: try Double(sqlValue: sqlValue))
    }
}

extension Optional: SQLColumnDecodable where Wrapped: SQLColumnDecodable {
    package init(sqlValue: SQLValue) throws {
        self = sqlValue == .null ? nil : try Wrapped(sqlValue: sqlValue)
    }
}
