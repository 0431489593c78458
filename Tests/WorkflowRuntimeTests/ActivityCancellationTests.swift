import Foundation
import Logging
import Testing
import WorkflowRuntime

/// Heartbeats every 20 ms until a heartbeat says stop; notes why it stopped. Finishes after 20 s.
struct WorksUntilStopped: Activity {
    static let name = "test.works-until-stopped"
    let journal: AttemptJournal

    func run(context: ActivityContext, input: String) async throws -> String {
        journal.record("start \(context.attempt)")
        let end = Date().addingTimeInterval(20)
        while Date() < end {
            do {
                try await context.heartbeat()
                try await Task.sleep(for: .milliseconds(20))
            } catch {
                journal.record("stopped \(context.attempt)")
                throw error
            }
        }
        return "finished"
    }
}

/// Races an activity against a timer in a task group and cancels the loser with `cancelAll()`.
struct RaceActivityAgainstTimer: Workflow {
    static let name = "test.race-activity-against-timer"

    struct Input: Codable, Sendable {
        var activity: String
        var cancellation: ActivityCancellationType
        var timerMilliseconds: Int
        var taskQueue: String?
    }

    func run(context: WorkflowContext, input: Input) async throws -> [String] {
        try await withThrowingTaskGroup(of: String.self) { group in
            group.addTask {
                do {
                    let options = ActivityOptions(
                        startToCloseTimeout: .seconds(60), heartbeatTimeout: .seconds(5), taskQueue: input.taskQueue,
                        cancellationType: input.cancellation)
                    return "activity " + (try await context.execute(Uppercase.self, input.activity, options: options))
                } catch is CancellationError {
                    return "activity cancelled"
                }
            }
            group.addTask {
                do {
                    try await context.sleep(for: .milliseconds(input.timerMilliseconds))
                    return "timer"
                } catch is CancellationError {
                    return "timer cancelled"
                }
            }
            var outcomes = [try await group.next()!]
            group.cancelAll()
            while let next = try await group.next() { outcomes.append(next) }
            return outcomes
        }
    }
}

@Suite("Cancelling one activity (or one branch of a task group) from workflow code")
struct ActivityCancellationTests {
    /// `Uppercase` is replaced by an activity that works until stopped, under the same name, so
    /// the workflow's code needs no test hooks.
    struct StoppableUppercase: Activity {
        static let name = Uppercase.name
        let journal: AttemptJournal
        func run(context: ActivityContext, input: String) async throws -> String {
            if input == "quick" { return "QUICK" }
            return try await WorksUntilStopped(journal: journal).run(context: context, input: input)
        }
    }

    private static func withWorker(
        _ backend: StoreBackend, _ journal: AttemptJournal,
        _ body: @escaping @Sendable (any WorkflowStore, WorkflowClient) async throws -> Void
    ) async throws {
        var registry = WorkflowRegistry()
        registry.register(RaceActivityAgainstTimer.self)
        registry.register(StoppableUppercase(journal: journal))
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        try await backend.withStore { store in
            let client = WorkflowClient(store: store, registry: registry)
            let worker = Worker(
                store: store, registry: registry,
                configuration: WorkerConfiguration(pollInterval: .milliseconds(20)), logger: logger)
            try await worker.withRunning { try await body(store, client) }
        }
    }

    private static func kinds(_ store: any WorkflowStore, _ runID: String) async throws -> [String] {
        try await store.history(runID: runID).map(\.kind.name)
    }

    @Test("each mode: the timer wins, the activity's branch throws CancellationError; tryCancel and waitCancellationCompleted ask the attempt to stop (waitCancellationCompleted until it has), abandon leaves it",
          .timeLimit(.minutes(2)), arguments: StoreBackend.allCases, ActivityCancellationType.allCases)
    func modes(backend: StoreBackend, mode: ActivityCancellationType) async throws {
        let journal = AttemptJournal()
        try await Self.withWorker(backend, journal) { store, client in
            let handle = try await client.start(
                RaceActivityAgainstTimer.self, id: "race",
                input: .init(activity: "slow", cancellation: mode, timerMilliseconds: 300))
            let run = try await client.waitForClose(runID: handle.runID, timeout: .seconds(30))
            #expect(run.status == .completed, "\(run.failure?.description ?? "")")
            #expect(try run.result?.decode(as: [String].self) == ["timer", "activity cancelled"])
            let kinds = try await Self.kinds(store, handle.runID)
            switch mode {
            case .tryCancel:
                #expect(kinds.contains("activityCancelRequested"))
            case .waitCancellationCompleted:
                // The attempt acknowledged before the code went on: its end is in history before the close.
                let cancelled = try #require(kinds.firstIndex(of: "activityCancelled"), "\(kinds)")
                #expect(kinds.firstIndex(of: "activityCancelRequested")! < cancelled)
                #expect(cancelled < kinds.firstIndex(of: "workflowCompleted")!)
                #expect(journal.all.contains("stopped 1"))
            case .abandon:
                #expect(!kinds.contains("activityCancelRequested"), "\(kinds)")
            }
            // Whatever the mode, the attempt stops (asked to, or its run closed) and is never retried.
            try await waitFor("the attempt to stop", timeout: .seconds(10)) { journal.all.contains("stopped 1") }
            try await Task.sleep(for: .milliseconds(200))
            #expect(journal.all == ["start 1", "stopped 1"])
            #expect(try await store.pendingWork(runID: handle.runID).activities.isEmpty)
        }
    }

    @Test("an activity no worker has started (its queue has none) ends at once when cancelled, even when the code waits for it",
          .timeLimit(.minutes(1)), arguments: StoreBackend.allCases)
    func notStarted(backend: StoreBackend) async throws {
        let journal = AttemptJournal()
        try await Self.withWorker(backend, journal) { store, client in
            let handle = try await client.start(
                RaceActivityAgainstTimer.self, id: "unserved",
                input: .init(activity: "slow", cancellation: .waitCancellationCompleted, timerMilliseconds: 100,
                             taskQueue: "nobody-serves-this"))
            let run = try await client.waitForClose(runID: handle.runID, timeout: .seconds(30))
            #expect(try run.result?.decode(as: [String].self) == ["timer", "activity cancelled"])
            let kinds = try await Self.kinds(store, handle.runID)
            #expect(kinds.contains("activityCancelRequested") && kinds.contains("activityCancelled"), "\(kinds)")
            #expect(journal.all.isEmpty)
        }
    }

    @Test("the branch that loses a sleep is cancelled with its timer: the run does not wait an hour; its history replays",
          .timeLimit(.minutes(1)), arguments: StoreBackend.allCases)
    func losingTimerCancelled(backend: StoreBackend) async throws {
        let journal = AttemptJournal()
        try await Self.withWorker(backend, journal) { store, client in
            let handle = try await client.start(
                RaceActivityAgainstTimer.self, id: "quick",
                input: .init(activity: "quick", cancellation: .tryCancel, timerMilliseconds: 3_600_000))
            let run = try await client.waitForClose(runID: handle.runID, timeout: .seconds(30))
            #expect(try run.result?.decode(as: [String].self) == ["activity QUICK", "timer cancelled"])
            let history = try await store.history(runID: handle.runID)
            #expect(history.map(\.kind.name).contains("timerCancelled"))
            #expect(try await store.pendingWork(runID: handle.runID).timers.isEmpty)
            var registry = WorkflowRegistry()
            registry.register(RaceActivityAgainstTimer.self)
            try WorkflowReplayer(registry: registry).replay(history, runID: handle.runID)
        }
    }
}
