import ArgumentParser
import Foundation
import Logging
import Synchronization
import WorkflowRuntime

/// The worker daemon and admin CLI as a library: a team registers its own workflows and
/// activities and gets `run`, `start`, `list`, `show`, `signal`, `cancel`, `terminate`,
/// `approvals`, `approve`, `reject`, `retry`, `replay` and `migrate` in a few lines.
///
/// ```swift
/// import KeelCLI
/// import WorkflowRuntime
///
/// @main struct MyWorker {
///     static func main() async {
///         await KeelCLI.main(name: "my-worker") { _ in
///             var registry = WorkflowRegistry()
///             registry.register(Onboarding.self)
///             registry.register(SendWelcomeEmail())
///             return registry
///         }
///     }
/// }
/// ```
public enum KeelCLI {
    /// Builds the registry for the database a command opened (activities may share it: see
    /// `WorkflowDatabase.sqlitePath` and `WorkflowDatabase.postgresClient`).
    public typealias RegistryBuilder = @Sendable (WorkflowDatabase) throws -> WorkflowRegistry

    struct Setup: Sendable {
        var name: String
        var registry: RegistryBuilder
        var extraCommands: [any ParsableCommand.Type]
    }

    private static let setup = Mutex<Setup?>(nil)

    /// Parses the process's arguments and runs the command.
    /// - Parameters:
    ///   - name: the executable's name, shown in help.
    ///   - extraCommands: more subcommands (the `worker` executable adds `demo` and `bench`).
    ///   - registry: the workflows and activities this worker runs.
    public static func main(
        name: String = "worker", extraCommands: [any ParsableCommand.Type] = [],
        registry: @escaping RegistryBuilder
    ) async {
        setup.withLock { $0 = Setup(name: name, registry: registry, extraCommands: extraCommands) }
        await KeelCommand.runReportingUsageErrorsAsBadInput()
    }

    static var current: Setup {
        setup.withLock { $0 } ?? Setup(name: "worker", registry: { _ in WorkflowRegistry() }, extraCommands: [])
    }

    /// The exit code of every kind of bad input.
    static var badInputExitCode: Int32 { exitCode(for: .invalidArgument) }

    /// The registry for `store`.
    package static func registry(for store: any WorkflowStore) throws -> WorkflowRegistry {
        try current.registry(WorkflowDatabase(store: store))
    }
}

struct KeelCommand: AsyncParsableCommand {
    /// Parses and runs the command like `main()`, but a command line that does not parse (an
    /// unknown option, a missing or mistyped value) exits with Keel's code for bad input, 2,
    /// rather than the argument parser's 64: every kind of bad input has one exit code.
    static func runReportingUsageErrorsAsBadInput() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            guard exitCode(for: error) == .validationFailure else { exit(withError: error) }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(KeelCLI.badInputExitCode)
        }
    }

    static var configuration: CommandConfiguration {
        let setup = KeelCLI.current
        return CommandConfiguration(
            commandName: setup.name,
            abstract: "Keel: durable workflows — the worker daemon and its admin commands.",
            discussion: """
                Every command takes --database URL (or KEEL_DATABASE_URL); the default is keel.sqlite in the \
                working directory. Exit codes: 0 success, 1 failure, 2 bad input, 3 not found, 4 workflow closed \
                (or not in the state the command needs), 5 database unreachable, 6 non-deterministic history,
                    7 decision \
                refused (stale, already decided, expired, wrong payload hash, decider not allowed), 8 database not \
                migrated (run migrate).
                """,
            version: "Keel \(KeelVersion.current)",
            subcommands: [
                RunCommand.self, MigrateCommand.self, StartCommand.self, ListCommand.self, ShowCommand.self,
                SignalCommand.self, CancelCommand.self, TerminateCommand.self, ApprovalsCommand.self,
                ApproveCommand.self,
                RejectCommand.self, RetryCommand.self, ReplayCommand.self, ScheduleCommand.self,
            ] + setup.extraCommands)
    }
}
