import ArgumentParser
import Logging
import ServiceLifecycle
import WorkflowRuntime

/// `worker run`: the daemon.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract:
            "Run the worker daemon: workflow tasks, activities and timers. SIGTERM drains in-flight work and exits 0.")

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Workflow tasks processed at once.")
    var workflowSlots = 64

    @Option(help: "Activity attempts run at once.")
    var activitySlots = 128

    @Option(help: "Milliseconds between polls for work created by other processes.")
    var pollIntervalMs = 200

    @Option(help: "Seconds a workflow task is leased; a crashed worker's task is taken over after it.")
    var workflowTaskTimeout = 10.0

    @Option(help: "Seconds an activity attempt is leased when its options set no start-to-close timeout.")
    var activityTimeout = 60.0

    @Option(
        help:
            ArgumentHelp(
                "Seconds a stopping worker (SIGTERM) lets running activities finish; then they are cancelled and "
                    + "given back to other workers.")
    )
    var shutdownGrace = 30.0

    @Flag(help: "Apply pending migrations at start-up.")
    var migrate = false

    @Flag(help: "Do not run activities eagerly on the worker that scheduled them.")
    var noEagerActivities = false

    @Flag(
        help:
            ArgumentHelp(
                "Refuse approval requests that name no approvers (anyone could decide them): such a run is blocked "
                    + "with the reason.")
    )
    var requireApprovers = false

    @Option(help: "A task queue this worker serves (repeat for several; default: default).")
    var taskQueue: [String] = []

    @Option(help: "Worker identity in leases and logs (default: host:pid:random).")
    var identity: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        try await reportingErrors {
            let level = logLevel
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "keel.worker")
            let location = try database.location()
            // Checked before the database is opened: a bad flag is an error, never a busy loop or a trap.
            for (flag, value) in [("--workflow-slots", workflowSlots), ("--activity-slots", activitySlots)]
            where !(1...WorkerConfiguration.maximumSlots).contains(value) {
                throw KeelError(
                    .invalidArgument, "\(flag) must be from 1 to \(WorkerConfiguration.maximumSlots), got \(value)")
            }
            guard (1...3_600_000).contains(pollIntervalMs) else {
                throw KeelError(
                    .invalidArgument, "--poll-interval-ms must be from 1 to 3600000 (an hour), got \(pollIntervalMs)")
            }
            var configuration = WorkerConfiguration(
                workflowTaskSlots: workflowSlots, activityTaskSlots: activitySlots,
                pollInterval: .milliseconds(pollIntervalMs),
                workflowTaskLease: try .checked(
                    seconds: workflowTaskTimeout, "--workflow-task-timeout", allowsZero: false),
                defaultActivityLease: try .checked(seconds: activityTimeout, "--activity-timeout", allowsZero: false),
                eagerActivities: !noEagerActivities, requiresApprovers: requireApprovers,
                shutdownGrace: try .checked(seconds: shutdownGrace, "--shutdown-grace"),
                taskQueues: taskQueue.isEmpty ? [TaskQueue.default] : taskQueue)
            if let identity { configuration.identity = identity }
            try configuration.validate()
            try await database.withStore(migrate: migrate, logger: logger, reachableWithin: .seconds(60)) { store in
                let worker = Worker(
                    store: store, registry: try KeelCLI.registry(for: store), configuration: configuration,
                    logger: logger)
                logger.info("opening \(location)")
                let group = ServiceGroup(
                    services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
                try await group.run()
            }
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
