import Foundation
import Logging
import PostgresNIO

/// Where the engine keeps its state, parsed from `--database` / `KEEL_DATABASE_URL`.
///
/// - `sqlite:PATH` or `sqlite://PATH` (optionally `?synchronous=normal`), or a bare file path.
/// - `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or `postgresql://`; `?sslmode=require` for TLS).
/// - No value: `keel.sqlite` in the working directory.
public enum StoreLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String, synchronous: SQLiteWorkflowStore.Synchronous)
    case postgres(PostgresLocation)

    /// A PostgreSQL server and database.
    public struct PostgresLocation: Sendable, Equatable {
        public var host: String
        public var port: Int
        public var username: String
        public var password: String?
        public var database: String
        public var requireTLS: Bool
        /// Connections each process may open (README: Connection budget).
        public var maximumConnections: Int
    }

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
            self = .postgres(try Self.parsePostgres(url))
            return
        }
        var rest = url
        if rest.hasPrefix("sqlite://") { rest.removeFirst("sqlite://".count) } else if rest.hasPrefix("sqlite:") { rest.removeFirst("sqlite:".count) } else if rest.contains("://") {
            throw KeelError(.invalidDatabaseURL, "unsupported database URL '\(url)': expected sqlite:PATH or postgres://USER:PASSWORD@HOST:PORT/DATABASE")
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

    private static func parsePostgres(_ url: String) throws -> PostgresLocation {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            throw KeelError(.invalidDatabaseURL, "cannot parse PostgreSQL URL '\(redacted(url))': expected postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let username = components.user, !username.isEmpty else {
            throw KeelError(.invalidDatabaseURL, "PostgreSQL URL '\(redacted(url))' names no user")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty else { throw KeelError(.invalidDatabaseURL, "PostgreSQL URL '\(redacted(url))' names no database") }
        var location = PostgresLocation(host: host, port: components.port ?? 5432, username: username, password: components.password,
                                        database: database, requireTLS: false, maximumConnections: 20)
        for item in components.queryItems ?? [] {
            switch (item.name, item.value) {
            case ("sslmode", "require"?): location.requireTLS = true
            case ("sslmode", "disable"?), ("sslmode", "prefer"?): location.requireTLS = false
            case ("pool", let value?) where Int(value).map({ $0 > 0 }) == true: location.maximumConnections = Int(value)!
            default:
                throw KeelError(.invalidDatabaseURL, "unsupported option '\(item.name)' in the PostgreSQL URL: use sslmode=disable|require, pool=N")
            }
        }
        return location
    }

    private static func redacted(_ url: String) -> String {
        guard var components = URLComponents(string: url), components.password != nil else { return url }
        components.password = "***"
        return components.string ?? url
    }

    public var description: String {
        switch self {
        case .sqlite(let path, let synchronous): "sqlite:\(path)" + (synchronous == .full ? "" : "?synchronous=\(synchronous.rawValue)")
        case .postgres(let location): "postgres://\(location.username)@\(location.host):\(location.port)/\(location.database)"
        }
    }

    /// Opens the store (without migrating it) for the duration of `body`, running what it needs
    /// in the background meanwhile (PostgreSQL's connection pool and notification listener).
    /// - Parameter reachableWithin: how long PostgreSQL may take to answer a first query before
    ///   this throws ``KeelError`` `.databaseUnreachable`.
    public func withStore<T: Sendable>(logger: Logger = Logger(label: "keel.store", level: .error),
                                       reachableWithin: Duration = .seconds(5),
                                       _ body: (any WorkflowStore) async throws -> T) async throws -> T {
        switch self {
        case .sqlite(let path, let synchronous):
            return try await body(try SQLiteWorkflowStore(path: path, synchronous: synchronous))
        case .postgres(let location):
            var configuration = PostgresClient.Configuration(
                host: location.host, port: location.port, username: location.username, password: location.password,
                database: location.database, tls: location.requireTLS ? .require(.makeClientConfiguration()) : .disable)
            configuration.options.maximumConnections = location.maximumConnections
            configuration.options.connectTimeout = .seconds(5)
            let store = PostgresWorkflowStore(configuration: configuration, logger: logger)
            return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
                group.addTask { await store.run() }
                defer { group.cancelAll() }
                try await store.checkReachable(within: reachableWithin, location: self)
                return try await body(store)
            }
        }
    }
}

extension Logger {
    /// A logger with a level set, e.g. a quiet one for command-line tools.
    public init(label: String, level: Logger.Level) {
        self.init(label: label)
        logLevel = level
    }
}
