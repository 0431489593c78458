import ArgumentParser
import Foundation
import WorkflowRuntime

/// `worker start TYPE --id ID --input JSON [--wait]`.
struct StartCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start", abstract: "Start a workflow (an open run with the same id is returned instead).")

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "Workflow type, e.g. diagnostics.sequence.")
    var type: String

    @Option(help: "Workflow id, unique among open runs.")
    var id: String

    @Option(help: "Input as JSON, @PATH to read it from a file, or - to read standard input.")
    var input = "{}"

    @Option(
        help:
            ArgumentHelp(
                "The run's task queue: only workers serving it (worker run --task-queue) run its workflow tasks "
                    + "and, by default, its activities.")
    )
    var taskQueue = TaskQueue.default

    @Option(help: ArgumentHelp("When the id already ran: \(WorkflowIDReusePolicy.help)"))
    var idReusePolicy = WorkflowIDReusePolicy.allowDuplicate

    @Flag(help: "Wait for the run to close and print its result (a worker must be running).")
    var wait = false

    @Option(help: "Seconds to wait with --wait (at most 100 years).")
    var timeout: Double?

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            let waitLimit = try timeout.map { try Duration.checked(seconds: $0, "--timeout", allowsZero: false) }
            let input = try JSONArgument.payload(input, option: "--input")
            try await database.withStore { store in
                let client = WorkflowClient(store: store, registry: try KeelCLI.registry(for: store))
                let handle = try await client.start(
                    workflowType: type, id: id, input: input, taskQueue: taskQueue, idReusePolicy: idReusePolicy)
                guard wait else {
                    if json {
                        try printJSON(handle)
                    } else {
                        printLine(
                            handle.created
                                ? "started \(handle.workflowID) (run \(handle.runID))"
                                : "already running: \(handle.workflowID) (run \(handle.runID))")
                    }
                    return
                }
                let run = try await client.waitForClose(runID: handle.runID, timeout: waitLimit)
                if json { try printJSON(run) } else { print(RunRenderer.summary(run)) }
                if run.status != .completed { throw ExitCode(1) }
            }
        }
    }
}

/// `worker list [--status S] [--type T] [--stage S] [--attr NAME=VALUE]... [--parent ID] [--all-runs] [--json]`.
struct ListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list", abstract: "List workflows, newest first: each workflow id's latest run.")

    @OptionGroup var database: DatabaseOptions

    @Option(
        help:
            ArgumentHelp(
                "Only runs in this status: running, blocked, compensationFailed, completed, failed, cancelled, "
                    + "terminated, compensated, continuedAsNew.")
    )
    var status: RunStatus?

    @Option(help: "Only runs of this workflow type.")
    var type: String?

    @Option(help: "Only the child workflows started by this workflow id's runs.")
    var parent: String?

    @Option(help: "Only runs in this stage (as their code set it).")
    var stage: String?

    @Option(help: "Only runs started by this schedule.")
    var schedule: String?

    @Option(
        help: ArgumentHelp(
            "Only runs whose search attribute NAME holds VALUE (for a keyword list: holds the keyword; dates in "
                + "ISO-8601). Repeatable: every one must match.", valueName: "name=value"))
    var attr: [String] = []

    @Flag(help: "Every run, not only each workflow id's latest (runs continued as new, earlier starts).")
    var allRuns = false

    @Option(help: "At most this many runs.")
    var limit = 50

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            guard limit > 0 else { throw KeelError(.invalidArgument, "--limit must be positive") }
            try await database.withStore { store in
                let client = WorkflowClient(store: store)
                var filters: [String: SearchAttributeValue] = [:]
                for filter in attr {
                    guard let equals = filter.firstIndex(of: "="), equals != filter.startIndex else {
                        throw KeelError(.invalidArgument, "--attr '\(filter)' must be NAME=VALUE")
                    }
                    let name = String(filter[..<equals])
                    let text = String(filter[filter.index(after: equals)...])
                    // An attribute no run has matches nothing: say so rather than list nothing silently.
                    guard let kind = try await client.searchAttributeKind(named: name) else {
                        throw KeelError(.invalidArgument, "no run has the search attribute '\(name)'")
                    }
                    filters[name] = try SearchAttributeValue.parse(text, kind: kind, name: name)
                }
                if let schedule { filters["scheduleID"] = .string(schedule) }
                let runs = try await client.list(
                    RunQuery(
                        status: status, workflowType: type, parentWorkflowID: parent, stage: stage,
                        searchAttributes: filters, latestRunPerWorkflow: !allRuns, limit: limit))
                if json { return try printJSON(runs) }
                var table = TextTable("WORKFLOW ID", "TYPE", "STATUS", "STAGE", "CREATED", "CLOSED", "EVENTS")
                for run in runs {
                    table.add(
                        run.workflowID, run.workflowType, run.status.rawValue, run.stage ?? "-",
                        Formatting.time(run.createdAt), Formatting.time(run.closedAt), "\(run.historyLength)")
                }
                print(runs.isEmpty ? "no runs" : table.render())
            }
        }
    }
}

extension RunStatus: ExpressibleByArgument {}

extension WorkflowIDReusePolicy: ExpressibleByArgument {
    static let help =
        "allowDuplicate (default: start again), allowDuplicateFailedOnly (only if its last run did not "
        + "complete), rejectDuplicate (never), terminateIfRunning (end an open run and start anew)."
}

/// `worker show ID [--history] [--json]`.
struct ShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show", abstract: "Show a run: status, result or error, pending work, approvals, and its timeline."
    )

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "Workflow id.")
    var id: String

    @Flag(help: "Include every history event (by default only the timeline's milestones).")
    var history = false

    @Flag(help: "Print JSON.")
    var json = false

    func run() async throws {
        try await reportingErrors {
            try await database.withStore { store in
                var description = try await WorkflowClient(store: store).describe(workflowID: id, includeHistory: true)
                if json {
                    if !history { description.history = nil }
                    try printJSON(description)
                } else {
                    print(RunRenderer.details(description, fullHistory: history))
                }
            }
        }
    }
}

/// `worker signal ID NAME [--payload JSON] [--request-id R] [--start TYPE --input JSON]`.
struct SignalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signal",
        abstract: "Send a signal to an open run (with --start: start the run first when none is open).")

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "Workflow id.")
    var id: String

    @Argument(help: "Signal name.")
    var name: String

    @Option(help: "Payload as JSON, @PATH to read it from a file, or - to read standard input.")
    var payload = "{}"

    @Option(help: "Request id: a retry with the same id is not delivered twice.")
    var requestId: String?

    @Option(
        help: ArgumentHelp(
            "Signal-with-start: when no run of the id is open, start one of this workflow type and deliver the "
                + "signal as the first thing it receives, in one transaction.", valueName: "type"))
    var start: String?

    @Option(help: "With --start: the new run's input, as JSON, @PATH or -.")
    var input: String?

    @Option(help: "With --start: the new run's task queue.")
    var taskQueue = TaskQueue.default

    @Option(help: ArgumentHelp("With --start, when the id already ran: \(WorkflowIDReusePolicy.help)"))
    var idReusePolicy = WorkflowIDReusePolicy.allowDuplicate

    func validate() throws {
        if start == nil, input != nil {
            throw ValidationError("--input needs --start TYPE (the workflow to start when none is open)")
        }
    }

    func run() async throws {
        try await reportingErrors {
            let payload = try JSONArgument.payload(payload, option: "--payload")
            let startInput = try start.map { _ in try JSONArgument.payload(input ?? "{}", option: "--input") }
            try await database.withStore { store in
                let outcome: SignalOutcome
                if let start, let startInput {
                    let client = WorkflowClient(store: store, registry: try KeelCLI.registry(for: store))
                    let result = try await client.signalWithStart(
                        workflowType: start, id: id, input: startInput, signal: name, payload: payload,
                        requestID: requestId, taskQueue: taskQueue, idReusePolicy: idReusePolicy)
                    if result.handle.created { printLine("started \(id) (run \(result.handle.runID))") }
                    outcome = result.signal
                } else {
                    outcome = try await WorkflowClient(store: store).signal(
                        workflowID: id, name: name, payload: payload, requestID: requestId)
                }
                switch outcome {
                case .delivered(let runID): printLine("signal '\(name)' stored for \(id) (run \(runID))")
                case .duplicate(let runID):
                    printLine("duplicate: request \(requestId ?? "") was already delivered to \(id) (run \(runID))")
                }
            }
        }
    }
}

/// `worker cancel ID [--reason R]`.
struct CancelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Ask an open run to stop; its code sees a cancellation error.")

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "Workflow id.")
    var id: String

    @Option(help: "Why.")
    var reason: String?

    func run() async throws {
        try await reportingErrors {
            try await database.withStore { store in
                try await WorkflowClient(store: store).cancel(workflowID: id, reason: reason)
                printLine("cancellation requested for \(id)")
            }
        }
    }
}

/// `worker terminate ID --reason R`.
struct TerminateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "terminate", abstract: "Stop an open run at once, recording why.")

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "Workflow id.")
    var id: String

    @Option(help: "Why (recorded in the history).")
    var reason: String

    func run() async throws {
        try await reportingErrors {
            try await database.withStore { store in
                try await WorkflowClient(store: store).terminate(workflowID: id, reason: reason)
                printLine("terminated \(id)")
            }
        }
    }
}

/// `worker replay ID`.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay", abstract: "Check a run's stored history against this build's workflow code.")

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "Workflow id.")
    var id: String

    func run() async throws {
        try await reportingErrors {
            try await database.withStore { store in
                guard let run = try await store.findRun(workflowID: id) else {
                    throw KeelError(.workflowNotFound, "no workflow with id '\(id)'")
                }
                let history = try await store.history(runID: run.runID)
                try WorkflowReplayer(registry: try KeelCLI.registry(for: store)).replay(history, runID: run.runID)
                printLine("replayed \(history.count) events of \(id) (run \(run.runID)): deterministic")
            }
        }
    }
}
