/// An open workflow database: what clients, workers and test environments share.
///
/// Open one with a backend library: `WorkflowDatabase.sqlite(path:)` (KeelSQLite, the embedded
/// default) or `WorkflowDatabase.withPostgres(_:logger:_:)` (KeelPostgres). The store operations
/// behind it (claims, leases, commits) are the engine's, not part of the public API: a program
/// reaches a database only through ``WorkflowClient`` and ``Worker``.
public struct WorkflowDatabase: Sendable {
    package let store: any WorkflowStore

    package init(store: any WorkflowStore) {
        self.store = store
    }

    /// Applies pending schema migrations; concurrent callers, in any process, apply each once.
    /// - Returns: the migrations this call applied (empty when the schema was current).
    @discardableResult
    public func migrate() async throws -> [String] {
        try await store.migrate()
    }

    /// The migrations not yet applied (empty when the schema is current).
    public func pendingMigrations() async throws -> [String] {
        try await store.pendingMigrations()
    }
}
