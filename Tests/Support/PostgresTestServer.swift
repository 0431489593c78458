import Foundation

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

    /// Creates a new, empty database on the test server and returns its URL.
    public static func freshDatabaseURL() throws -> String {
        let base = try url
        guard var components = URLComponents(string: base) else { throw Missing() }
        let name = "keel_test_\(UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16))"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", base, "-qc", "CREATE DATABASE \(name)"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw PostgresCreateFailed(description: "psql could not create database \(name) on \(base)")
        }
        components.path = "/\(name)"
        return components.string!
    }

    public struct PostgresCreateFailed: Error, CustomStringConvertible {
        public var description: String
    }
}
