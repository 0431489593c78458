import ArgumentParser
import Foundation
import Logging
import WorkflowRuntime

/// `--database URL`, shared by every command.
public struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "Database URL: sqlite:PATH or postgres://USER[:PASSWORD]@HOST:PORT/DATABASE (default: "
                + "KEEL_DATABASE_URL, else keel.sqlite here).",
            discussion:
                "Without a password in the URL, PostgreSQL's comes from KEEL_DATABASE_PASSWORD or the file "
                + "KEEL_DATABASE_PASSWORD_FILE names."
        ))
    public var database: String?

    public init() {}

    /// The configured location: the option (which must not be empty), else `KEEL_DATABASE_URL`
    /// (empty or unset: the default file); a PostgreSQL password missing from the URL comes from
    /// `KEEL_DATABASE_PASSWORD` or `KEEL_DATABASE_PASSWORD_FILE`.
    public func location() throws -> StoreLocation {
        let environment = ProcessInfo.processInfo.environment
        let url = database ?? environment["KEEL_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        return try StoreLocation(url: url).withPassword(fromEnvironment: environment)
    }

    /// Opens the database for the duration of `body`, checking its schema is current, or
    /// migrating it when `migrate` is set. Only migrating creates an SQLite file (in an existing
    /// directory). For a team's own subcommands (``KeelCLI/main(name:extraCommands:registry:)``).
    public func withDatabase<T: Sendable>(
        migrate: Bool = false, logger: Logger = Logger(label: "keel.store", level: .error),
        reachableWithin: Duration = .seconds(5),
        _ body: (WorkflowDatabase) async throws -> T
    ) async throws -> T {
        try await withStore(migrate: migrate, logger: logger, reachableWithin: reachableWithin) {
            try await body(WorkflowDatabase(store: $0))
        }
    }

    /// ``withDatabase(migrate:logger:reachableWithin:_:)`` with the store itself, for the CLI's commands.
    package func withStore<T: Sendable>(
        migrate: Bool = false, logger: Logger = Logger(label: "keel.store", level: .error),
        reachableWithin: Duration = .seconds(5),
        _ body: (any WorkflowStore) async throws -> T
    ) async throws -> T {
        let location = try location()
        let command = "\(KeelCLI.current.name) migrate"
        if !migrate, case .sqlite(let path, _) = location, !FileManager.default.fileExists(atPath: path) {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue {
                throw KeelError(
                    .databaseUnreachable, "no database at \(location): check the path, or run `\(command)` to create it"
                )
            }
            throw KeelError(
                .databaseUnreachable,
                "no database at \(location): the directory '\(directory)' does not exist (check the path; "
                    + "`\(command)` creates a database only in an existing directory)"
            )
        }
        return try await location.withStore(logger: logger, reachableWithin: reachableWithin, createIfMissing: migrate)
        { store in
            if migrate {
                try await store.migrate()
            } else {
                let pending = try await store.pendingMigrations()
                if !pending.isEmpty {
                    throw KeelError(
                        .notMigrated,
                        "the database at \(location) needs migrations (\(pending.joined(separator: ", "))): run "
                            + "`\(command)`"
                    )
                }
            }
            return try await body(store)
        }
    }
}
