import Foundation
import KeelProcess

/// A `worker run` child process, for the demo's simulated crash.
struct WorkerProcess {
    private let child: ChildProcess

    /// Starts `worker run` (this same binary) against `databaseURL` with short leases, logging to `logPath`.
    init(databaseURL: String, logPath: String, leaseSeconds: Double) async throws {
        child = try await ChildProcess.start(
            URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path,
            arguments: [
                "run", "--database", databaseURL, "--poll-interval-ms", "50",
                "--workflow-task-timeout", "\(leaseSeconds)", "--activity-timeout", "\(leaseSeconds)",
            ],
            logPath: logPath)
    }

    var pid: Int32 { child.processIdentifier }

    /// SIGKILL: the process gets no chance to clean up.
    func kill() async {
        await child.kill()
    }

    /// SIGTERM, then waits for the drain (a minute at most). - Returns: the exit status.
    func stop() async throws -> Int32 {
        try await child.stop(within: .seconds(60))
    }
}
