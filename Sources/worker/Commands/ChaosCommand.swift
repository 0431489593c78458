import ArgumentParser
import Foundation
import KeelCLI
import Logging
import WorkflowRuntime

/// `worker chaos --database postgres://… [--duration 600] [--restart-command CMD]`.
struct ChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos",
        abstract:
            "Run diagnostic workflows across several worker processes while killing, pausing and cutting them off.",
        discussion: """
            Starts --workers `worker run` processes on the database and --runs diagnostic runs (sequences, sagas, \
            approvals it decides itself) spread over --duration seconds. Meanwhile a random worker is SIGKILLed \
            and restarted every --kill-every seconds, one is SIGSTOPped past its lease and resumed, every \
            connection to the database is cut (pg_terminate_backend), and --restart-command, if given, restarts \
            the server once. Then it checks that every run reached its expected end, that each step's idempotency \
            key is in diagnostic_effects exactly once, and that every history replays, and prints one summary \
            line. Exit 0 when nothing was lost or duplicated, 1 otherwise.
            """)

    @Option(help: "A PostgreSQL URL (the database is migrated; use a scratch database).") var database: String
    @Option(help: "Seconds of chaos.") var duration = 60
    @Option(help: "Worker processes.") var workers = 3
    @Option(help: "Runs started, spread over the duration.") var runs = 100
    @Option(help: "Seconds between kills.") var killEvery = 3.0
    @Option(help: "A shell command that restarts the database server (run once).") var restartCommand: String?
    @Option(help: "Where the workers log (default: a new temporary directory).") var logDirectory: String?

    func run() async throws {
        try await reportingErrors {
            guard (5...86_400).contains(duration) else {
                throw KeelError(.invalidArgument, "--duration must be from 5 to 86400 seconds, got \(duration)")
            }
            guard (2...16).contains(workers), (1...100_000).contains(runs), killEvery >= 0.5, killEvery.isFinite else {
                throw KeelError(
                    .invalidArgument, "--workers must be 2-16, --runs 1-100000, --kill-every at least 0.5 seconds")
            }
            let location = try StoreLocation(url: database)
            guard case .postgres = location else {
                throw KeelError(.invalidArgument, "the chaos harness runs on PostgreSQL (--database postgres://...)")
            }
            let logs =
                logDirectory
                ?? FileManager.default.temporaryDirectory.appendingPathComponent(
                    "keel-chaos-\(UInt32.random(in: 0...UInt32.max))"
                ).path
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
            let plan = ChaosHarness.Plan(
                databaseURL: database, duration: .seconds(duration), workers: workers, runs: runs,
                killEvery: .milliseconds(Int64(killEvery * 1000)), restartCommand: restartCommand, logDirectory: logs)
            let summary = try await location.withStore(reachableWithin: .seconds(60)) { store in
                try await store.migrate()
                let registry = try WorkerRegistry.make(for: WorkflowDatabase(store: store))
                let harness = ChaosHarness(
                    plan: plan, client: WorkflowClient(store: store, registry: registry), store: store,
                    registry: registry)
                return try await harness.run()
            }
            for problem in summary.problems.prefix(20) { printLine("problem: \(problem)") }
            printLine("worker logs: \(logs)")
            printLine(summary.description)
            if !summary.ok { throw ExitCode(1) }
        }
    }
}
