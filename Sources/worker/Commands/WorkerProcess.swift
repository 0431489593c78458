import Foundation
#if canImport(Glibc)
    import Glibc
#endif

/// A `worker run` child process, for the demo's simulated crash.
final class WorkerProcess {
    private let process = Process()

    /// Starts `worker run` against `databaseURL` with short leases, logging to `logPath`.
    init(databaseURL: String, logPath: String, leaseSeconds: Double) throws {
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        process.arguments = [
            "run", "--database", databaseURL, "--poll-interval-ms", "50",
            "--workflow-task-timeout", "\(leaseSeconds)", "--activity-timeout", "\(leaseSeconds)",
        ]
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }

    /// SIGKILL: the process gets no chance to clean up.
    func kill() {
        _ = Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then waits. - Returns: the exit status.
    func stop() -> Int32 {
        process.terminate()
        process.waitUntilExit()
        return process.terminationStatus
    }
}
