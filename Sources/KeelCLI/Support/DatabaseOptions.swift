import ArgumentParser
import Foundation
import Logging
import WorkflowRuntime

/// `--database URL`, shared by every command.
public struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "Database URL: sqlite:PATH (default: keel.sqlite here; also KEEL_DATABASE_URL).")
    public var database: String?

    public init() {}

    /// The configured location: the option, else `KEEL_DATABASE_URL`, else the default file.
    public func location() throws -> StoreLocation {
        try StoreLocation(url: database ?? ProcessInfo.processInfo.environment["KEEL_DATABASE_URL"])
    }

    /// Opens the store for the duration of `body`, checking its schema is current (or migrating it
    /// when `migrate` is set).
    public func withStore<T: Sendable>(migrate: Bool = false, logger: Logger = Logger(label: "keel.store", level: .error),
                                       reachableWithin: Duration = .seconds(5),
                                       _ body: (any WorkflowStore) async throws -> T) async throws -> T {
        let location = try location()
        return try await location.withStore(logger: logger, reachableWithin: reachableWithin) { store in
            if migrate {
                try await store.migrate()
            } else {
                let pending = try await store.pendingMigrations()
                if !pending.isEmpty {
                    throw KeelError(.databaseUnreachable,
                                    "the database at \(location) needs migrations (\(pending.joined(separator: ", "))): run `\(KeelCLI.current.name) migrate`")
                }
            }
            return try await body(store)
        }
    }
}

