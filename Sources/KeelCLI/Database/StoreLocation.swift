import Foundation
import Logging
import KeelPostgres
import KeelSQLite
import PostgresNIO
import WorkflowRuntime

/// Where the engine keeps its state, parsed from `--database` / `KEEL_DATABASE_URL`.
///
/// - `sqlite:PATH` or `sqlite://PATH` (optionally `?synchronous=normal`), or a bare file path.
/// - `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or `postgresql://`), with the options
///   `sslmode=disable|prefer|require`, `pool=N`, `idle_in_transaction_timeout=SECONDS` and
///   `statement_timeout=SECONDS`. The user and password end at the URL's last `@`, so a password
///   may hold `/`, `#`, `?` or `@`; percent-encoding (`%40` for `@`) works too.
/// - No value (`nil`): `keel.sqlite` in the working directory. An empty string is an error.
///
/// No message and no ``description`` ever contains the password.
public enum StoreLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String, synchronous: SQLiteSynchronous)
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
        /// How long the server lets a Keel session sit idle inside a transaction before it ends the
        /// session, releasing its row locks: a paused or partitioned worker then loses its locks
        /// along with its lease. Keep it below the leases (`--workflow-task-timeout`).
        public var idleInTransactionTimeout: Duration = .seconds(5)
        /// How long one statement of a Keel session may run before the server cancels it
        /// (migrations are exempt).
        public var statementTimeout: Duration = .seconds(30)
    }

    /// The default when nothing is configured: an SQLite file in the working directory.
    public static let defaultSQLite = StoreLocation.sqlite(path: "keel.sqlite", synchronous: .full)

    /// PostgreSQL's largest timeout, `INT_MAX` milliseconds.
    static let maximumTimeoutSeconds = 2_147_483.0

    /// Parses a database URL; `nil` means the default file.
    /// - Throws: ``KeelError`` `.invalidDatabaseURL` naming what is wrong (never the password).
    public init(url: String?) throws {
        guard let url else {
            self = .defaultSQLite
            return
        }
        guard !url.isEmpty else { throw KeelError(.invalidDatabaseURL, "the database URL is empty") }
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            self = .postgres(try Self.parsePostgres(url))
            return
        }
        var rest = url
        if rest.hasPrefix("sqlite://") {
            rest.removeFirst("sqlite://".count)
        } else if rest.hasPrefix("sqlite:") {
            rest.removeFirst("sqlite:".count)
        } else if rest.contains("://") {
            throw KeelError(
                .invalidDatabaseURL,
                "unsupported database URL '\(Self.redacted(url))': expected sqlite:PATH or "
                    + "postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            )
        }
        var synchronous = SQLiteSynchronous.full
        if let question = rest.firstIndex(of: "?") {
            let query = rest[rest.index(after: question)...]
            rest = String(rest[..<question])
            for pair in query.split(separator: "&") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, parts[0] == "synchronous",
                    let value = SQLiteSynchronous(rawValue: parts[1].lowercased())
                else {
                    throw KeelError(
                        .invalidDatabaseURL,
                        "unsupported option '\(pair)' in '\(Self.redacted(url))': only synchronous=full|normal")
                }
                synchronous = value
            }
        }
        guard !rest.isEmpty else {
            throw KeelError(.invalidDatabaseURL, "database URL '\(Self.redacted(url))' has no file path")
        }
        self = .sqlite(path: rest, synchronous: synchronous)
    }

    /// `postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE[?OPTIONS]`, parsed by hand: the user
    /// information ends at the last `@`, so no character of a password can derail the parse.
    private static func parsePostgres(_ url: String) throws -> PostgresLocation {
        let shown = redacted(url)
        let expected = "expected postgres://USER:PASSWORD@HOST:PORT/DATABASE"
        guard let scheme = url.range(of: "://") else {
            throw KeelError(.invalidDatabaseURL, "cannot parse PostgreSQL URL '\(shown)': \(expected)")
        }
        var rest = url[scheme.upperBound...]
        var userInfo: Substring = ""
        if let at = rest.lastIndex(of: "@") {
            userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
        }
        guard !rest.contains("#") else {
            throw KeelError(
                .invalidDatabaseURL, "PostgreSQL URL '\(shown)' has a '#' after the host: percent-encode it (%23)")
        }
        let query = rest.firstIndex(of: "?").map { rest[rest.index(after: $0)...] } ?? ""
        let beforeQuery = rest.firstIndex(of: "?").map { rest[..<$0] } ?? rest
        let hostAndPort = beforeQuery.firstIndex(of: "/").map { beforeQuery[..<$0] } ?? beforeQuery
        let path = beforeQuery.firstIndex(of: "/").map { beforeQuery[beforeQuery.index(after: $0)...] } ?? ""

        var host = hostAndPort
        var portText: Substring?
        if host.hasPrefix("[") {  // [IPv6]:PORT
            guard let close = host.firstIndex(of: "]") else {
                throw KeelError(.invalidDatabaseURL, "PostgreSQL URL '\(shown)' has an unclosed '[' in its host")
            }
            let after = host[host.index(after: close)...]
            if after.hasPrefix(":") {
                portText = after.dropFirst()
            } else if !after.isEmpty {
                throw KeelError(.invalidDatabaseURL, "cannot parse the host of PostgreSQL URL '\(shown)': \(expected)")
            }
            host = host[host.index(after: host.startIndex)..<close]
        } else if let colon = host.lastIndex(of: ":") {
            portText = host[host.index(after: colon)...]
            host = host[..<colon]
        }
        guard !host.isEmpty else {
            throw KeelError(.invalidDatabaseURL, "PostgreSQL URL '\(shown)' names no host: \(expected)")
        }
        var port = 5432
        if let portText {
            guard let number = Int(portText), (1...65_535).contains(number) else {
                throw KeelError(
                    .invalidDatabaseURL,
                    "the port '\(portText)' in PostgreSQL URL '\(shown)' is not a number from 1 to 65535")
            }
            port = number
        }

        let rawUser = userInfo.firstIndex(of: ":").map { userInfo[..<$0] } ?? userInfo
        let rawPassword = userInfo.firstIndex(of: ":").map { userInfo[userInfo.index(after: $0)...] }
        guard let username = String(rawUser).removingPercentEncoding, !username.isEmpty else {
            throw KeelError(
                .invalidDatabaseURL,
                "PostgreSQL URL '\(shown)' names no user (or its percent-encoding is invalid): \(expected)")
        }
        var password: String?
        if let rawPassword {
            guard let decoded = String(rawPassword).removingPercentEncoding else {
                throw KeelError(
                    .invalidDatabaseURL,
                    "the password in PostgreSQL URL '\(shown)' has an invalid percent-encoding (a '%' must be "
                        + "followed by two hex digits; write %25 for '%')"
                )
            }
            password = decoded
        }
        guard let database = String(path).removingPercentEncoding, !database.isEmpty, !database.contains("/") else {
            throw KeelError(
                .invalidDatabaseURL, "PostgreSQL URL '\(shown)' names no database (or not one): \(expected)")
        }

        var location = PostgresLocation(
            host: String(host), port: port, username: username, password: password,
            database: database, requireTLS: false, maximumConnections: 20)
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(parts[0])
            let value = parts.count == 2 ? String(parts[1]).removingPercentEncoding ?? String(parts[1]) : ""
            switch name {
            case "sslmode":
                switch value {
                case "require": location.requireTLS = true
                case "disable", "prefer": location.requireTLS = false
                default:
                    throw KeelError(
                        .invalidDatabaseURL,
                        "sslmode '\(value)' in the PostgreSQL URL is not supported: use sslmode=disable|prefer|require")
                }
            case "pool":
                guard let size = Int(value) else {
                    throw KeelError(
                        .invalidDatabaseURL,
                        "pool '\(value)' in the PostgreSQL URL is not a whole number: give the connections per "
                            + "process, at least 1 (e.g. pool=20)"
                    )
                }
                guard size >= 1 else {
                    throw KeelError(.invalidDatabaseURL, "pool must be at least 1 (got pool=\(value))")
                }
                location.maximumConnections = size
            case "idle_in_transaction_timeout":
                location.idleInTransactionTimeout = try timeout(name, value)
            case "statement_timeout":
                location.statementTimeout = try timeout(name, value)
            default:
                throw KeelError(
                    .invalidDatabaseURL,
                    "unsupported option '\(name)' in the PostgreSQL URL: use sslmode=disable|prefer|require, "
                        + "pool=N, idle_in_transaction_timeout=SECONDS, statement_timeout=SECONDS"
                )
            }
        }
        return location
    }

    /// A timeout option in seconds: a finite number above 0, at most PostgreSQL's limit (about 24.8 days).
    private static func timeout(_ name: String, _ value: String) throws -> Duration {
        guard let seconds = Double(value), seconds.isFinite, seconds > 0, seconds <= maximumTimeoutSeconds else {
            throw KeelError(
                .invalidDatabaseURL,
                "\(name) '\(value)' in the PostgreSQL URL must be a number of seconds above 0 and at most "
                    + "\(Int(maximumTimeoutSeconds)) (e.g. \(name)=5)"
            )
        }
        return .milliseconds(Int64((seconds * 1000).rounded(.up)))
    }

    /// `url` with any password replaced by `***`, without parsing it: everything between `://` and
    /// the last `@` becomes `USER:***`.
    public static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url[scheme.upperBound...].lastIndex(of: "@") else {
            return url
        }
        let userInfo = url[scheme.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<scheme.upperBound] + userInfo[..<colon] + ":***" + url[at...])
    }

    /// This location with a PostgreSQL password from the environment when the URL gives none:
    /// `KEEL_DATABASE_PASSWORD`, or the contents of the file `KEEL_DATABASE_PASSWORD_FILE` names
    /// (without its trailing newline). Keeps a password out of command lines, where `ps` shows it.
    /// - Throws: ``KeelError`` `.invalidArgument` when both are set or the file cannot be read.
    public func withPassword(fromEnvironment environment: [String: String]) throws -> StoreLocation {
        guard case .postgres(var location) = self, location.password == nil else { return self }
        let direct = environment["KEEL_DATABASE_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        let file = environment["KEEL_DATABASE_PASSWORD_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        switch (direct, file) {
        case (nil, nil):
            return self
        case (let password?, nil):
            location.password = password
        case (nil, let path?):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw KeelError(
                    .invalidArgument, "cannot read KEEL_DATABASE_PASSWORD_FILE '\(path)': no readable file there")
            }
            var password = String(decoding: data, as: UTF8.self)
            while password.hasSuffix("\n") || password.hasSuffix("\r") { password.removeLast() }
            guard !password.isEmpty else {
                throw KeelError(.invalidArgument, "KEEL_DATABASE_PASSWORD_FILE '\(path)' is empty")
            }
            location.password = password
        case (.some, .some):
            throw KeelError(
                .invalidArgument, "both KEEL_DATABASE_PASSWORD and KEEL_DATABASE_PASSWORD_FILE are set: set one")
        }
        return .postgres(location)
    }

    public var description: String {
        switch self {
        case .sqlite(let path, let synchronous):
            "sqlite:\(path)" + (synchronous == .full ? "" : "?synchronous=\(synchronous.rawValue)")
        case .postgres(let location):
            "postgres://\(location.username)@\(location.bracketedHost):\(location.port)/\(location.database)"
        }
    }

    /// Opens the database (without migrating it) for the duration of `body`: what a program that
    /// takes a database URL, as the CLI's `--database` does, hands to ``WorkflowClient`` and
    /// ``Worker``. PostgreSQL's connection pool and listener run meanwhile.
    /// - Throws: ``KeelError`` `.databaseUnreachable` if it cannot be opened.
    public func withDatabase<T: Sendable>(
        logger: Logger = Logger(label: "keel.store", level: .error),
        _ body: (WorkflowDatabase) async throws -> T
    ) async throws -> T {
        try await withStore(logger: logger) { store in try await body(WorkflowDatabase(store: store)) }
    }

    /// Opens the store (without migrating it) for the duration of `body`, running what it needs
    /// in the background meanwhile (PostgreSQL's connection pool and notification listener).
    /// - Parameters:
    ///   - createIfMissing: whether a missing SQLite file is created (in an existing directory;
    ///     directories are never created). Without it, a missing file throws `.databaseUnreachable`.
    ///   - reachableWithin: how long PostgreSQL may take to accept a first connection before this
    ///     throws ``KeelError`` `.databaseUnreachable`. A server that refuses the role, the
    ///     password or the database is reported at once, with its own message.
    package func withStore<T: Sendable>(
        logger: Logger = Logger(label: "keel.store", level: .error),
        reachableWithin: Duration = .seconds(5),
        createIfMissing: Bool = true,
        _ body: (any WorkflowStore) async throws -> T
    ) async throws -> T {
        switch self {
        case .sqlite(let path, let synchronous):
            return try await body(
                try SQLWorkflowStore(sqlitePath: path, synchronous: synchronous, createIfMissing: createIfMissing))
        case .postgres(let location):
            // A server that accepts one session with these settings accepts the pool's.
            try await PostgresDriver.checkServerAccepts(
                location.connectionConfiguration(), within: reachableWithin,
                location: description, logger: logger)
            return try await SQLWorkflowStore.withRunningPostgres(
                configuration: location.clientConfiguration(), logger: logger
            ) {
                try await body($0)
            }
        }
    }
}

extension StoreLocation.PostgresLocation {
    /// The host as a URL shows it: an IPv6 address in brackets.
    var bracketedHost: String { host.contains(":") ? "[\(host)]" : host }

    /// The settings every Keel session starts with: the server bounds each transaction's idle
    /// time and each statement's run time, so no session holds row locks much past its lease.
    var sessionParameters: [(String, String)] {
        [
            ("idle_in_transaction_session_timeout", "\(Self.milliseconds(idleInTransactionTimeout))"),
            ("statement_timeout", "\(Self.milliseconds(statementTimeout))"),
        ]
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    /// The pool's configuration (connect timeout 5 s, session parameters).
    func clientConfiguration() -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password,
            database: database, tls: requireTLS ? .require(.makeClientConfiguration()) : .disable)
        configuration.options.maximumConnections = maximumConnections
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = sessionParameters
        return configuration
    }

    /// One direct connection's configuration, as the pool's.
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database,
            tls: requireTLS ? .require(try NIOSSLContext(configuration: .makeClientConfiguration())) : .disable)
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.additionalStartupParameters = sessionParameters
        return configuration
    }
}

extension Logger {
    /// A logger with a level set, e.g. a quiet one for command-line tools.
    public init(label: String, level: Logger.Level) {
        self.init(label: label)
        logLevel = level
    }
}
