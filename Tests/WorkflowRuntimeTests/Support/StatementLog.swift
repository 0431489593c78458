import Foundation
import Synchronization
import Testing
import WorkflowRuntime

/// A driver that runs everything on `base` and records, per write transaction, the SQL it sent:
/// what tells a commit that checked its fence in its writes from one that read the row first.
final class StatementLog: SQLDriver {
    let base: any SQLDriver
    private let transactions = Mutex<[[String]]>([])

    init(base: any SQLDriver) { self.base = base }

    /// A log of `store`'s driver, and a store on the same database whose writes it records.
    static func wrapping(_ store: any WorkflowStore) throws -> (StatementLog, SQLWorkflowStore) {
        let base = try #require(store as? SQLWorkflowStore)
        let log = StatementLog(base: base.driver)
        return (log, SQLWorkflowStore(driver: log))
    }

    var dialect: SQLDialect { base.dialect }
    var notifier: WorkNotifier { base.notifier }

    /// The statements of each write transaction since the last call, and forgets them.
    func take() -> [[String]] { transactions.withLock { taken in defer { taken = [] }; return taken } }

    func runTransaction(
        _ body: @escaping @Sendable (any SQLConnection, inout StoreNotifications) async throws -> any Sendable
    ) async throws -> any Sendable {
        let sent = SentStatements()
        defer { transactions.withLock { $0.append(sent.list.withLock { $0 }) } }
        return try await base.runTransaction { connection, notifications in
            try await body(LoggedConnection(base: connection, sent: sent), &notifications)
        }
    }

    func runRead(_ body: @escaping @Sendable (any SQLConnection) async throws -> any Sendable) async throws
        -> any Sendable
    { try await base.runRead(body) }

    func migrate() async throws -> [String] { try await base.migrate() }
    func pendingMigrations() async throws -> [String] { try await base.pendingMigrations() }
}

/// The SQL one transaction sent, in order.
final class SentStatements: Sendable {
    let list = Mutex<[String]>([])
    func append(_ sql: String) { list.withLock { $0.append(sql) } }
}

struct LoggedConnection: SQLConnection {
    let base: any SQLConnection
    let sent: SentStatements

    func query(_ sql: String, _ binds: [SQLValue]) async throws -> [SQLRow] {
        sent.append(sql)
        return try await base.query(sql, binds)
    }
    func execute(_ sql: String, _ binds: [SQLValue]) async throws {
        sent.append(sql)
        try await base.execute(sql, binds)
    }
    func changes(_ sql: String, _ binds: [SQLValue]) async throws -> Int {
        sent.append(sql)
        return try await base.changes(sql, binds)
    }
    func executeTogether(_ statements: [SQLStatement]) async throws -> [Int] {
        sent.append("together: " + statements.map(\.sql).joined(separator: "; "))
        return try await base.executeTogether(statements)
    }
}
