import Foundation
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

    /// Runs a CLI command to completion. The blocking wait runs on a thread of its own, so CLI
    /// commands of tests running in parallel never hold the test process's few concurrency threads.
    /// - Parameters:
    ///   - environment: when given, the child's `KEEL_` variables are exactly these (others are inherited).
    ///   - standardInput: written to the child's standard input, which is then closed.
    ///   - executable: the binary to run; default: the one built next to this test bundle.
    static func run(_ arguments: [String], environment: [String: String]? = nil, in directory: URL? = nil,
                    standardInput: Data? = nil, executable: URL = url) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            Thread {
                continuation.resume(with: Result {
                    try runBlocking(arguments, environment: environment, in: directory, standardInput: standardInput,
                                    executable: executable)
                })
            }.start()
        }
    }

    private static func runBlocking(_ arguments: [String], environment: [String: String]?, in directory: URL?,
                                    standardInput: Data?, executable: URL) throws -> Output {
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        if let environment {
            process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("KEEL_") }.merging(environment) { $1 }
        }
        if let directory { process.currentDirectoryURL = directory }
        let input = Pipe()
        let out = Pipe()
        let err = Pipe()
        if standardInput != nil { process.standardInput = input }
        process.standardOutput = out
        process.standardError = err
        try process.run()
        if let standardInput {
            input.fileHandleForWriting.write(standardInput)
            try input.fileHandleForWriting.close()
        }
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// A `worker run` daemon child process.
final class Daemon {
    private let process = Process()

    init(database: String, logPath: String, extraArguments: [String] = []) throws {
        process.executableURL = WorkerBinary.url
        process.arguments = ["run", "--database", database, "--poll-interval-ms", "50",
                             "--workflow-task-timeout", "2", "--activity-timeout", "1"] + extraArguments
        if !FileManager.default.fileExists(atPath: logPath) { _ = FileManager.default.createFile(atPath: logPath, contents: nil) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
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
    func kill() {
        _ = Glibc.kill(process.processIdentifier, SIGKILL)
        while process.isRunning { usleep(1_000) }
    }

    /// SIGTERM and wait for the drain (at most a minute). - Returns: the exit status.
    func terminate() async throws -> Int32 {
        try await stop(within: .seconds(60))
    }

    /// SIGTERM, then waits up to `timeout` for the worker to drain and exit.
    /// - Returns: the exit status.
    /// - Throws: ``DaemonError`` if it did not exit in time (it is then killed).
    func stop(within timeout: Duration) async throws -> Int32 {
        process.terminate()
        // Polls rather than `waitUntilExit()`, which cannot give up (and spins at full CPU when
        // called on another thread than the one that started the process).
        let end = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < end else {
                kill()
                throw DaemonError(description: "the worker did not exit within \(timeout) of SIGTERM")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { kill() }
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
