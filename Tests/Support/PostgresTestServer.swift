import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL server the tests use: `KEEL_TEST_POSTGRES_URL` (set by `scripts/test.sh`, which
/// starts a throwaway server). Without it, tests that need PostgreSQL fail with a clear message.
public enum PostgresTestServer {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "KEEL_TEST_POSTGRES_URL is not set: run the tests with `bash scripts/test.sh`, which starts a PostgreSQL server"
        }
    }

    public static var url: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["KEEL_TEST_POSTGRES_URL"], !url.isEmpty else { throw Missing() }
            return url
        }
    }

    /// Creates a new, empty database on the test server and returns its URL. Asynchronous all the
    /// way (no child process blocking a thread), since dozens of tests do this at once.
    public static func freshDatabaseURL() async throws -> String {
        let base = try url
        guard var components = URLComponents(string: base) else {
            throw PostgresCreateFailed(description: "KEEL_TEST_POSTGRES_URL is not a postgres://USER:PASSWORD@HOST:PORT/DATABASE URL")
        }
        let name = "keel_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16))"
        do {
            try await withServerConnection { connection, logger in
                try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
            }
        } catch let error as PostgresCreateFailed {
            throw error
        } catch {
            throw PostgresCreateFailed(description: "could not create database \(name) on \(base): \(String(reflecting: error))")
        }
        components.path = "/\(name)"
        return components.string!
    }

    /// Runs `body` with the URL of a new, empty database, and drops the database afterwards
    /// (whether `body` returns or throws), so test runs do not fill the server's disk. Dropping is
    /// cleanup, not part of the test: if it fails (a connection of the closed store still going
    /// away), `scripts/test.sh` drops the leftover at its next run.
    public static func withFreshDatabase<T>(_ body: (String) async throws -> T) async throws -> T {
        let url = try await freshDatabaseURL()
        let outcome: Result<T, any Error>
        do { outcome = .success(try await body(url)) } catch { outcome = .failure(error) }
        try? await drop(url)
        return try outcome.get()
    }

    /// Drops the database of `url` (made by ``freshDatabaseURL()``), closing its connections.
    public static func drop(_ url: String) async throws {
        guard let components = URLComponents(string: url) else { return }
        let name = String(components.path.drop(while: { $0 == "/" }))
        do {
            try await withServerConnection { connection, logger in
                try await connection.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: logger)
            }
        } catch {
            throw PostgresCreateFailed(description: "could not drop database \(name): \(String(reflecting: error))")
        }
    }

    /// Runs `body` on a connection to the database of `KEEL_TEST_POSTGRES_URL`.
    private static func withServerConnection(_ body: (PostgresConnection, Logger) async throws -> Void) async throws {
        let base = try url
        guard let components = URLComponents(string: base), let host = components.host, let user = components.user else {
            throw PostgresCreateFailed(description: "KEEL_TEST_POSTGRES_URL is not a postgres://USER:PASSWORD@HOST:PORT/DATABASE URL")
        }
        let logger = Logger(label: "keel.test-server")
        let configuration = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: String(components.path.drop(while: { $0 == "/" })), tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            try await body(connection, logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }

    public struct PostgresCreateFailed: Error, CustomStringConvertible {
        public var description: String
    }
}
