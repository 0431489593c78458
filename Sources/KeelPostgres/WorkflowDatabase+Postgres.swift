import Logging
import PostgresNIO
import WorkflowRuntime

extension WorkflowDatabase {
    /// Opens the PostgreSQL workflow database for the duration of `body`, running its connection
    /// pool and notification listener meanwhile. Call ``migrate()`` before first use.
    /// - Parameter configuration: server, credentials and pool size; each process uses up to
    ///   `maximumConnections` connections, plus one for `LISTEN`.
    public static func withPostgres<T: Sendable>(
        _ configuration: PostgresClient.Configuration, logger: Logger,
        _ body: (WorkflowDatabase) async throws -> T
    ) async throws -> T {
        try await SQLWorkflowStore.withRunningPostgres(configuration: configuration, logger: logger) { store in
            try await body(WorkflowDatabase(store: store))
        }
    }

    /// The connection pool of a PostgreSQL workflow database (`nil` for another backend):
    /// activities may share it for their own tables.
    public var postgresClient: PostgresClient? { (store as? SQLWorkflowStore)?.postgresDriver?.client }
}

extension SQLWorkflowStore {
    /// Runs a store on the PostgreSQL server of `configuration` for the duration of `body`, with
    /// its connection pool and notification listener.
    package static func withRunningPostgres<T: Sendable>(
        configuration: PostgresClient.Configuration, logger: Logger,
        _ body: (SQLWorkflowStore) async throws -> T
    ) async throws -> T {
        let driver = PostgresDriver(configuration: configuration, logger: logger)
        let store = SQLWorkflowStore(driver: driver)
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask { await driver.run() }
            defer { group.cancelAll() }
            return try await body(store)
        }
    }
}
