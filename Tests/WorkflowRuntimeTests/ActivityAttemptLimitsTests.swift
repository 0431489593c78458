import Foundation
import Logging
import Synchronization
import Testing
import WorkflowRuntime

/// What the attempts of the activities below did, in order.
final class AttemptJournal: Sendable {
    private let entries = Mutex<[String]>([])

    func record(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

/// Attempt 1 works for a minute without heartbeating; later attempts succeed at once.
struct StallsWithoutHeartbeat: Activity {
    static let name = "test.stalls-without-heartbeat"
    let journal: AttemptJournal

    func run(context: ActivityContext, input: String) async throws -> String {
        journal.record("start \(context.attempt)")
        guard context.attempt == 1 else { return "done on attempt \(context.attempt)" }
        do {
            try await Task.sleep(for: .seconds(60))
        } catch {
            journal.record("cancelled \(context.attempt)")
            throw error
        }
        return "slept"
    }
}

/// Heartbeats until its task is cancelled, ignoring what the heartbeats say (badly written, but
/// cooperative with task cancellation).
struct HeartbeatsUntilCancelled: Activity {
    static let name = "test.heartbeats-until-cancelled"
    let journal: AttemptJournal

    func run(context: ActivityContext, input: String) async throws -> String {
        journal.record("start \(context.attempt)")
        while !Task.isCancelled {
            try? await context.heartbeat()
            try? await Task.sleep(for: .milliseconds(50))
        }
        journal.record("stopped \(context.attempt)")
        return "stopped"
    }
}

/// Works until its task is cancelled, noting when its worker starts shutting down; once an
/// earlier run of it was stopped that way, it finishes at once.
struct NoticesShutdown: Activity {
    static let name = "test.notices-shutdown"
    let journal: AttemptJournal

    func run(context: ActivityContext, input: String) async throws -> String {
        journal.record("start \(context.attempt)")
        if journal.all.contains("stopped \(context.attempt)") { return "finished by another worker" }
        var noticed = false
        while !Task.isCancelled {
            if context.isWorkerShuttingDown, !noticed {
                noticed = true
                journal.record("shutdown noticed \(context.attempt)")
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        journal.record("stopped \(context.attempt)")
        throw CancellationError()
    }
}

struct RunsOneActivity: Workflow {
    static let name = "test.runs-one-activity"

    struct Input: Codable, Sendable {
        var activity: String
        var heartbeatTimeoutMilliseconds: Int?
    }

    func run(context: WorkflowContext, input: Input) async throws -> String {
        let options = ActivityOptions(retryPolicy: RetryPolicy(initialInterval: .milliseconds(100)), startToCloseTimeout: .seconds(60),
                                      heartbeatTimeout: input.heartbeatTimeoutMilliseconds.map { .milliseconds($0) })
        if input.activity == StallsWithoutHeartbeat.name {
            return try await context.execute(StallsWithoutHeartbeat.self, "x", options: options)
        }
        if input.activity == NoticesShutdown.name {
            return try await context.execute(NoticesShutdown.self, "x", options: options)
        }
        return try await context.execute(HeartbeatsUntilCancelled.self, "x", options: options)
    }
}

@Suite("An attempt ends when its heartbeat timeout passes or its lease is lost", .serialized)
struct ActivityAttemptLimitsTests {
    private static func registry(_ journal: AttemptJournal) -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.register(RunsOneActivity.self)
        registry.register(StallsWithoutHeartbeat(journal: journal))
        registry.register(HeartbeatsUntilCancelled(journal: journal))
        registry.register(NoticesShutdown(journal: journal))
        return registry
    }

    private static func worker(_ store: any WorkflowStore, _ journal: AttemptJournal, grace: Duration = .seconds(30)) -> Worker {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return Worker(store: store, registry: registry(journal),
                      configuration: WorkerConfiguration(pollInterval: .milliseconds(20), shutdownGrace: grace), logger: logger)
    }

    private func withWorker(_ backend: StoreBackend, _ journal: AttemptJournal,
                            _ body: @escaping @Sendable (any WorkflowStore, WorkflowClient) async throws -> Void) async throws {
        try await backend.withStore { store in
            let client = WorkflowClient(store: store, registry: Self.registry(journal))
            try await Self.worker(store, journal).withRunning { try await body(store, client) }
        }
    }

    @Test("a stopping worker tells its activities; after the grace period it cancels them and gives the attempt back at once, uncounted",
          arguments: StoreBackend.allCases)
    func shutdownGrace(backend: StoreBackend) async throws {
        let journal = AttemptJournal()
        try await backend.withStore { store in
            let client = WorkflowClient(store: store, registry: Self.registry(journal))
            let first = Self.worker(store, journal, grace: .milliseconds(300))
            let running = Task { try await first.run() }
            let handle = try await client.start(RunsOneActivity.self, id: "deploy", input: .init(activity: NoticesShutdown.name))
            try await waitFor("the attempt to start", timeout: .seconds(20)) { journal.all.contains("start 1") }
            first.stop()
            // The attempt's start-to-close timeout is a minute: only the grace period ends it this soon.
            try await waitFor("the worker to stop", timeout: .seconds(20)) { journal.all.contains("stopped 1") }
            try await running.value
            #expect(journal.all == ["start 1", "shutdown noticed 1", "stopped 1"])
            let pending = try #require(try await store.pendingWork(runID: handle.runID).activities.first)
            #expect(pending.leaseOwner == nil && pending.attempt == 0, "given back, the attempt not counted")
            #expect(pending.lastError?.contains("WorkerShutdown") == true, "\(pending.lastError ?? "")")
            #expect(pending.nextAttemptAt <= Date(), "visible to other workers at once, not after the lease")

            let result = try await Self.worker(store, journal).withRunning {
                try await client.result(of: handle, as: RunsOneActivity.self, timeout: .seconds(20))
            }
            #expect(result == "finished by another worker")
            #expect(journal.all.last == "start 1", "the next worker ran attempt 1 again, with the same idempotency key")
        }
    }

    @Test("no heartbeat within the heartbeat timeout: the attempt is cancelled before the next one starts", arguments: StoreBackend.allCases)
    func heartbeatTimeout(backend: StoreBackend) async throws {
        let journal = AttemptJournal()
        try await withWorker(backend, journal) { store, client in
            let handle = try await client.start(RunsOneActivity.self, id: "stall",
                                                input: .init(activity: StallsWithoutHeartbeat.name, heartbeatTimeoutMilliseconds: 300))
            #expect(try await client.result(of: handle, as: RunsOneActivity.self, timeout: .seconds(30)) == "done on attempt 2")
            let completed = try await store.history(runID: handle.runID).compactMap { event -> Int? in
                if case .activityCompleted(_, _, let attempt) = event.kind { return attempt }
                return nil
            }
            #expect(completed == [2])
        }
        #expect(journal.all == ["start 1", "cancelled 1", "start 2"], "attempt 1 ended before attempt 2 began")
    }

    @Test("a heartbeat that finds the lease lost (here: the run was terminated) cancels the attempt's task", arguments: StoreBackend.allCases)
    func leaseLost(backend: StoreBackend) async throws {
        let journal = AttemptJournal()
        try await withWorker(backend, journal) { store, client in
            let handle = try await client.start(RunsOneActivity.self, id: "beat", input: .init(activity: HeartbeatsUntilCancelled.name))
            try await waitFor("the attempt to start", timeout: .seconds(20)) { journal.all.contains("start 1") }
            try await client.terminate(workflowID: "beat", reason: "test")
            // The attempt's start-to-close timeout is a minute: only the lost lease can stop it this soon.
            try await waitFor("the attempt to stop", timeout: .seconds(20)) { journal.all.contains("stopped 1") }
            #expect(try await store.run(runID: handle.runID)?.status == .terminated)
        }
    }
}
