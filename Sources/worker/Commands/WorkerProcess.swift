import Foundation
import KeelProcess

/// A `worker run` child process of this same binary: the demo's simulated crash, and the bench's
/// separate worker (`worker bench --separate-worker`).
struct WorkerProcess {
    private let child: ChildProcess

    /// Starts `worker run --database databaseURL` with `options` after it, logging to `logPath`.
    init(databaseURL: String, logPath: String, options: [String]) async throws {
        child = try await ChildProcess.start(
            URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path,
            arguments: ["run", "--database", databaseURL] + options,
            logPath: logPath)
    }

    /// Starts `worker run` against `databaseURL` with short leases, logging to `logPath`.
    init(databaseURL: String, logPath: String, leaseSeconds: Double) async throws {
        try await self.init(
            databaseURL: databaseURL, logPath: logPath,
            options: [
                "--poll-interval-ms", "50",
                "--workflow-task-timeout", "\(leaseSeconds)", "--activity-timeout", "\(leaseSeconds)",
            ])
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
