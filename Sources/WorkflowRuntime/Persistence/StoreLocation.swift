import Foundation

/// Where the engine keeps its state, parsed from `--database` / `KEEL_DATABASE_URL`.
///
/// - `sqlite:PATH` or `sqlite://PATH` (optionally `?synchronous=normal`), or a bare file path.
/// - No value: `keel.sqlite` in the working directory.
public enum StoreLocation: Sendable, Equatable {
    case sqlite(path: String, synchronous: SQLiteWorkflowStore.Synchronous)

    /// The default when nothing is configured: an SQLite file in the working directory.
    public static let defaultSQLite = StoreLocation.sqlite(path: "keel.sqlite", synchronous: .full)

    /// Parses a database URL.
    /// - Throws: ``KeelError`` `.invalidDatabaseURL` naming what is wrong.
    public init(url: String?) throws {
        guard let url, !url.isEmpty else {
            self = .defaultSQLite
            return
        }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            throw KeelError(.invalidDatabaseURL, "PostgreSQL is not supported by this build yet; use sqlite:PATH")
        }
        var rest = url
        if rest.hasPrefix("sqlite://") { rest.removeFirst("sqlite://".count) } else if rest.hasPrefix("sqlite:") { rest.removeFirst("sqlite:".count) } else if rest.contains("://") {
            throw KeelError(.invalidDatabaseURL, "unsupported database URL '\(url)': expected sqlite:PATH")
        }
        var synchronous = SQLiteWorkflowStore.Synchronous.full
        if let question = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: question)...]
            rest = String(rest[..<question])
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, parts[0] == "synchronous", let value = SQLiteWorkflowStore.Synchronous(rawValue: parts[1].lowercased()) else {
                    throw KeelError(.invalidDatabaseURL, "unsupported option '\(pair)' in '\(url)': only synchronous=full|normal")
                }
                synchronous = value
            }
        }
        guard !rest.isEmpty else { throw KeelError(.invalidDatabaseURL, "database URL '\(url)' has no file path") }
        self = .sqlite(path: rest, synchronous: synchronous)
    }

    /// Opens the store (without migrating it).
    public func open() throws -> any WorkflowStore {
        switch self {
        case .sqlite(let path, let synchronous): try SQLiteWorkflowStore(path: path, synchronous: synchronous)
        }
    }
}
