import ArgumentParser
import Foundation
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

    /// Opens the store and checks its schema is current (or migrates it when `migrate` is set).
    public func openStore(migrate: Bool = false) async throws -> (any WorkflowStore, StoreLocation) {
        let location = try location()
        let store = try location.open()
        if migrate {
            try await store.migrate()
        } else {
            let pending = try await store.pendingMigrations()
            if !pending.isEmpty {
                throw KeelError(.databaseUnreachable,
                                "the database at \(location) needs migrations (\(pending.joined(separator: ", "))): run `\(KeelCLI.current.name) migrate`")
            }
        }
        return (store, location)
    }
}

extension StoreLocation: CustomStringConvertible {
    public var description: String {
        switch self {
        case .sqlite(let path, let synchronous): "sqlite:\(path)" + (synchronous == .full ? "" : "?synchronous=\(synchronous.rawValue)")
        }
    }
}
