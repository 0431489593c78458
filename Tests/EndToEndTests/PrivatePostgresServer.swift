import Foundation
import KeelProcess
#if canImport(Glibc)
import Glibc
#endif

/// A PostgreSQL server of one test's own — its own port and data directory, run with
/// `scripts/postgres-dev.sh` — that the test may restart or cut off without disturbing the suites
/// that share the test server (`KEEL_TEST_POSTGRES_URL`).
///
/// ```swift
/// try await PrivatePostgresServer.with { server in
///     // server.url: postgres://keel:keel@127.0.0.1:PORT/keel
///     try await server.restart()
/// }
/// ```
struct PrivatePostgresServer {
    let port: Int
    /// The data directory (its `server.log` is the server's log).
    let directory: String
    /// `postgres://keel:keel@127.0.0.1:PORT/keel`: the database `keel`, owned by the role `keel`.
    let url: String

    /// Starts a new server, runs `body` with it, then stops the server and removes its data
    /// directory, whether `body` returns or throws.
    /// - Throws: ``PostgresScriptError`` if the server cannot start (e.g. PostgreSQL's server
    ///   binaries are not installed: a failure, never a skip).
    static func with<T>(_ body: (PrivatePostgresServer) async throws -> T) async throws -> T {
        let port = try freePort()
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("keel-postgres-\(port)-\(UUID().uuidString.prefix(8))").path
        let server: PrivatePostgresServer
        do {
            let output = try await PostgresDevScript.run("start", port: port, directory: directory)
            let url = output.split(separator: "\n").last.map(String.init) ?? ""
            guard url.hasPrefix("postgres://") else {
                throw PostgresScriptError(description: "postgres-dev.sh start printed no URL: \(output)")
            }
            server = PrivatePostgresServer(port: port, directory: directory, url: url)
        } catch {
            await remove(port: port, directory: directory)
            throw error
        }
        do {
            let value = try await body(server)
            await remove(port: port, directory: directory)
            return value
        } catch {
            await remove(port: port, directory: directory)
            throw error
        }
    }

    /// Stops the server (fast shutdown: connections are cut) and starts it again.
    func restart() async throws {
        _ = try await PostgresDevScript.run("restart", port: port, directory: directory)
    }

    private static func remove(port: Int, directory: String) async {
        if (try? await PostgresDevScript.run("stop", port: port, directory: directory)) == nil,
           let pid = try? String(contentsOfFile: "\(directory)/postmaster.pid", encoding: .utf8)
               .split(separator: "\n").first.flatMap({ pid_t($0) }) {
            _ = kill(pid, SIGKILL)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A port nothing listens on, below the range the kernel hands out to outgoing connections.
    private static func freePort() throws -> Int {
        for _ in 0..<50 {
            let port = Int.random(in: 20_000..<30_000)
            if canListen(on: port) { return port }
        }
        throw PostgresScriptError(description: "found no free port for a private PostgreSQL server")
    }

    private static func canListen(on port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }
}

/// Runs `scripts/postgres-dev.sh` for a server on `port` with data in `directory`.
enum PostgresDevScript {
    static let path = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/postgres-dev.sh").path

    /// Runs `command` (`start`, `stop`, `restart`) and returns what the script printed.
    /// - Throws: ``PostgresScriptError`` with the script's errors and the server log's end if it
    ///   fails or takes longer than `timeout` (it is then killed).
    static func run(_ command: String, port: Int, directory: String, timeout: Duration = .seconds(60)) async throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("keel-postgres-dev-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: output) }
        let script = try await ChildProcess.start(
            "/bin/bash", arguments: [path, command],
            environment: ["KEEL_PG_PORT": "\(port)", "KEEL_PG_DIR": directory], logPath: output.path)
        guard let status = try await script.waitForExit(within: timeout) else {
            await script.kill()
            throw PostgresScriptError(description: "postgres-dev.sh \(command) took longer than \(timeout)\(details(output, directory))")
        }
        let printed = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw PostgresScriptError(description: "postgres-dev.sh \(command) failed (status \(status))\(details(output, directory))")
        }
        return printed.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func details(_ output: URL, _ directory: String) -> String {
        let printed = (try? String(contentsOf: output, encoding: .utf8)) ?? ""
        let serverLog = (try? String(contentsOfFile: "\(directory)/server.log", encoding: .utf8)) ?? ""
        return ": \(printed)\nserver.log (end): \(serverLog.suffix(2_000))"
    }
}

struct PostgresScriptError: Error, CustomStringConvertible {
    var description: String
}
