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
        return try await context.execute(HeartbeatsUntilCancelled.self, "x", options: options)
    }
}

@Suite("An attempt ends when its heartbeat timeout passes or its lease is lost", .serialized)
struct ActivityAttemptLimitsTests {
    private func withWorker(_ backend: StoreBackend, _ journal: AttemptJournal,
                            _ body: @escaping @Sendable (any WorkflowStore, WorkflowClient) async throws -> Void) async throws {
        try await backend.withStore { store in
            var registry = WorkflowRegistry()
            registry.register(RunsOneActivity.self)
            registry.register(StallsWithoutHeartbeat(journal: journal))
            registry.register(HeartbeatsUntilCancelled(journal: journal))
            var logger = Logger(label: "test")
            logger.logLevel = .critical
            let worker = Worker(store: store, registry: registry, configuration: WorkerConfiguration(pollInterval: .milliseconds(20)),
                                logger: logger)
            let client = WorkflowClient(store: store, registry: registry)
            try await worker.withRunning { try await body(store, client) }
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

    private func waitFor(_ what: String, timeout: Duration, _ condition: @Sendable () -> Bool) async throws {
        let end = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < end else { throw KeelError(.timeout, "timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
