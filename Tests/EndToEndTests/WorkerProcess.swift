import Foundation
import KeelProcess
#if canImport(Glibc)
import Glibc
#endif

/// The `worker` executable built next to this test bundle, run as a child process.
enum WorkerBinary {
    static var url: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("worker")
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a CLI command against `database` to completion.
    static func run(_ arguments: [String], database: String, standardInput: Data? = nil) async throws -> Output {
        try await run(arguments + ["--database", database], standardInput: standardInput)
    }

    /// Runs a CLI command to completion.
    /// - Parameters:
    ///   - environment: when given, the child's `KEEL_` variables are exactly these (others are inherited).
    ///   - standardInput: written to the child's standard input, which is then closed.
    ///   - executable: the binary to run; default: the one built next to this test bundle.
    static func run(_ arguments: [String], environment: [String: String]? = nil, in directory: URL? = nil,
                    standardInput: Data? = nil, executable: URL = url) async throws -> Output {
        var changes: [String: String?] = [:]
        if let environment {
            for name in ProcessInfo.processInfo.environment.keys where name.hasPrefix("KEEL_") { changes[name] = .none }
            for (name, value) in environment { changes[name] = value }
        }
        let output = try await ChildProcess.run(
            executable.path, arguments: arguments, environment: changes, workingDirectory: directory?.path,
            standardInput: standardInput)
        return Output(status: output.status, stdout: output.standardOutput, stderr: output.standardError)
    }
}

/// A `worker run` daemon child process, logging to a file.
struct Daemon {
    private let child: ChildProcess

    /// Starts `worker run` with short leases and a 50 ms poll, appending its output to `logPath`.
    init(database: String, logPath: String, workflowTaskTimeout: Int = 2, activityTimeout: Int = 1,
         extraArguments: [String] = [], environment: [String: String] = [:]) async throws {
        child = try await ChildProcess.start(
            WorkerBinary.url.path,
            arguments: ["run", "--database", database, "--poll-interval-ms", "50",
                        "--workflow-task-timeout", "\(workflowTaskTimeout)",
                        "--activity-timeout", "\(activityTimeout)"] + extraArguments,
            environment: environment, logPath: logPath)
    }

    /// Starts the `number`th daemon of a series sharing one log (identity `wNUMBER`) and waits
    /// until it is up — what a test that kills and restarts its worker does each time.
    static func started(_ number: Int, database: String, logPath: String) async throws -> Daemon {
        let daemon = try await Daemon(database: database, logPath: logPath, extraArguments: ["--identity", "w\(number)"])
        try await waitForStart(logPath: logPath, count: number)
        return daemon
    }

    /// Waits until the log shows `count` worker start-ups (signal handlers are installed by then).
    static func waitForStart(logPath: String, count: Int) async throws {
        for _ in 0..<500 {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            if log.components(separatedBy: "worker started").count - 1 >= count { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw DaemonError(description: "the worker did not start within 10 s; log: \(logPath)")
    }

    /// SIGKILL, and waits the moment it takes the process to go.
    func kill() async {
        await child.kill()
    }

    /// SIGSTOP: the process stops where it is, holding its connections and leases.
    func pause() { child.send(SIGSTOP) }

    /// SIGCONT after ``pause()``.
    func resume() { child.send(SIGCONT) }

    /// SIGTERM and wait for the drain (at most a minute). - Returns: the exit status.
    func terminate() async throws -> Int32 {
        try await stop(within: .seconds(60))
    }

    /// SIGTERM, then waits up to `timeout` for the worker to drain and exit.
    /// - Returns: the exit status.
    /// - Throws: ``ChildProcessError/didNotExit(_:within:)`` if it did not exit in time (it is then killed).
    func stop(within timeout: Duration) async throws -> Int32 {
        try await child.stop(within: timeout)
    }
}

struct DaemonError: Error, CustomStringConvertible {
    var description: String
}

/// A scratch directory with a database file, removed afterwards.
struct Scratch {
    let directory: URL

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("keel-e2e-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    var databasePath: String { directory.appendingPathComponent("keel.sqlite").path }
    var databaseURL: String { "sqlite:\(databasePath)" }
    var logPath: String { directory.appendingPathComponent("worker.log").path }

    func remove() {
        try? FileManager.default.removeItem(at: directory)
    }
}
