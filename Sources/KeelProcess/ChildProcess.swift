import Foundation
import Subprocess
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

#if canImport(System)
    import System
#else
    import SystemPackage
#endif

/// A child process started by Keel's tools — `worker demo`'s simulated crashes and the end-to-end
/// tests' daemons, CLI runs and database scripts — over swiftlang/swift-subprocess.
///
/// Waiting never blocks a thread: the child's exit is observed by swift-subprocess's monitor
/// (a pidfd in epoll), so any number of children can be awaited from Swift concurrency's few
/// threads, and a wait can give up (``waitForExit(within:)``) — which Foundation's
/// `Process.waitUntilExit` cannot.
public final class ChildProcess: Sendable {
    /// How a child ended, as a shell reports it: its exit code, or 128 + the signal that ended it.
    public typealias Status = Int32

    /// The child's process id, for log lines and signals sent by other means.
    public let processIdentifier: Int32

    private let exit: Task<Status, any Error>
    private let reaped: ReapedFlag

    private init(processIdentifier: Int32, exit: Task<Status, any Error>, reaped: ReapedFlag) {
        self.processIdentifier = processIdentifier
        self.exit = exit
        self.reaped = reaped
    }

    /// Set, under its lock, once swift-subprocess has reaped the child (its process id may then be reused).
    private final class ReapedFlag: Sendable {
        let value = Mutex(false)
    }

    /// Starts `executable` with its standard output and error appended to the file at `logPath`
    /// (created if absent) and its standard input empty.
    /// - Parameters:
    ///   - environment: changes to the inherited environment; a `nil` value removes the variable.
    /// - Throws: ``ChildProcessError/couldNotStart(_:reason:)`` if the log cannot be opened or the
    ///   executable cannot be run.
    public static func start(
        _ executable: String, arguments: [String], environment: [String: String?] = [:],
        workingDirectory: String? = nil, logPath: String
    ) async throws -> ChildProcess {
        let output: FileDescriptor
        let error: FileDescriptor
        do {
            output = try FileDescriptor.open(
                logPath, .writeOnly, options: [.create, .append], permissions: [.ownerReadWrite, .groupRead])
            error = try FileDescriptor(rawValue: output.rawValue).duplicate()
        } catch {
            throw ChildProcessError.couldNotStart(executable, reason: "cannot open the log \(logPath): \(error)")
        }
        let configuration = configuration(executable, arguments, environment, workingDirectory)
        let (started, announce) = AsyncStream.makeStream(of: Int32.self)
        let reaped = ReapedFlag()
        let exit = Task<Status, any Error> {
            defer {
                reaped.value.withLock { $0 = true }
                announce.finish()
            }
            let result = try await Subprocess.run(
                configuration, input: .none,
                output: .fileDescriptor(output, closeAfterSpawningProcess: true),
                error: .fileDescriptor(error, closeAfterSpawningProcess: true)
            ) { execution in
                announce.yield(execution.processIdentifier.value)
            }
            return status(of: result.terminationStatus)
        }
        var pids = started.makeAsyncIterator()
        guard let processIdentifier = await pids.next() else {
            // The body never ran: spawning failed, and the task holds why.
            do { _ = try await exit.value } catch {
                throw ChildProcessError.couldNotStart(executable, reason: "\(error)")
            }
            throw ChildProcessError.couldNotStart(executable, reason: "it ended before it started")
        }
        return ChildProcess(processIdentifier: processIdentifier, exit: exit, reaped: reaped)
    }

    /// Runs `executable` to its end and collects what it printed.
    /// - Parameters:
    ///   - environment: changes to the inherited environment; a `nil` value removes the variable.
    ///   - standardInput: written to the child's standard input, which is then closed.
    public static func run(
        _ executable: String, arguments: [String], environment: [String: String?] = [:],
        workingDirectory: String? = nil, standardInput: Data? = nil
    ) async throws -> Output {
        let configuration = configuration(executable, arguments, environment, workingDirectory)
        let limit = 64 << 20
        do {
            let result =
                if let standardInput {
                    try await Subprocess.run(
                        configuration, input: .data(standardInput),
                        output: .string(limit: limit), error: .string(limit: limit))
                } else {
                    try await Subprocess.run(
                        configuration, input: .none, output: .string(limit: limit), error: .string(limit: limit))
                }
            return Output(
                status: status(of: result.terminationStatus), standardOutput: result.standardOutput,
                standardError: result.standardError)
        } catch {
            throw ChildProcessError.couldNotStart(executable, reason: "\(error)")
        }
    }

    /// What a child run by ``run(_:arguments:environment:workingDirectory:standardInput:)`` printed.
    public struct Output: Sendable {
        /// Its exit code, or 128 + the signal that ended it.
        public var status: Status
        public var standardOutput: String
        public var standardError: String
    }

    /// Whether the child has ended (and been reaped).
    public var hasExited: Bool { reaped.value.withLock { $0 } }

    /// Sends `signal` (for example `SIGTERM`, `SIGSTOP`, `SIGCONT`) unless the child has ended.
    public func send(_ signal: Int32) {
        // Checked under the lock that the exit sets: once reaped, its process id may be reused.
        reaped.value.withLock { reaped in
            if !reaped { _ = Glibc.kill(processIdentifier, signal) }
        }
    }

    /// Waits for the child to end. - Returns: its status.
    public func waitForExit() async throws -> Status {
        try await exit.value
    }

    /// Waits up to `timeout` for the child to end.
    /// - Returns: its status, or `nil` if it is still running.
    public func waitForExit(within timeout: Duration) async throws -> Status? {
        let deadline = ContinuousClock.now + timeout
        while !hasExited {
            guard ContinuousClock.now < deadline else { return nil }
            try await Task.sleep(for: .milliseconds(10))
        }
        return try await exit.value
    }

    /// SIGTERM, then waits up to `timeout` for the child to end; SIGKILL if it has not.
    /// - Returns: its status.
    /// - Throws: ``ChildProcessError/didNotExit(_:within:)`` if it had to be killed.
    public func stop(within timeout: Duration) async throws -> Status {
        send(SIGTERM)
        if let status = try await waitForExit(within: timeout) { return status }
        await kill()
        throw ChildProcessError.didNotExit(processIdentifier, within: timeout)
    }

    /// SIGKILL — the child gets no chance to clean up — and waits the moment it takes to go.
    public func kill() async {
        send(SIGKILL)
        _ = try? await exit.value
    }

    deinit {
        send(SIGKILL)
    }

    private static func configuration(
        _ executable: String, _ arguments: [String], _ environment: [String: String?], _ workingDirectory: String?
    ) -> Configuration {
        var changes: [Environment.Key: String?] = [:]
        for (name, value) in environment { changes[Environment.Key(stringLiteral: name)] = value }
        return Configuration(
            executable: .path(FilePath(executable)), arguments: Arguments(arguments),
            environment: .inherit.updating(changes), workingDirectory: workingDirectory.map { FilePath($0) })
    }

    private static func status(of termination: TerminationStatus) -> Status {
        switch termination {
        case .exited(let code): code
        case .signaled(let signal): 128 + signal
        }
    }
}

/// Why a child process could not be run or stopped.
public enum ChildProcessError: Error, CustomStringConvertible {
    case couldNotStart(String, reason: String)
    case didNotExit(Int32, within: Duration)

    public var description: String {
        switch self {
        case .couldNotStart(let executable, let reason): "could not start \(executable): \(reason)"
        case .didNotExit(let pid, let timeout):
            "process \(pid) did not exit within \(timeout) of SIGTERM; it was killed"
        }
    }
}
