import Foundation
import Logging
import Testing
import WorkflowRuntime
import WorkflowTesting

/// Sleeps `milliseconds`, then returns.
private struct Nap: Workflow {
    static let name = "test.nap"

    func run(context: WorkflowContext, input: Int64) async throws -> String {
        try await context.sleep(for: .milliseconds(input))
        return "rested"
    }
}

@Suite("A worker fires the timers of the runs it keeps in memory")
struct OwnedTimerTests {
    private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    private let constants = RunConstants(taskQueue: "default", startedBySchedule: false)

    /// The workflow tasks ready at `time`, claimed by `owner` (none of their runs cached).
    private func claim(_ store: any WorkflowStore, owner: String, at time: Date) async throws -> [WorkflowTask] {
        try await store.claimWorkflowTasks(
            owner: owner, limit: 10, lease: .seconds(10), now: time, cachedTaskVersion: { _ in nil })
    }

    /// Starts run `id` and commits its first task, which starts timer 1 due at `fireAt`, owned by `owner`.
    private func sleepingRun(
        _ store: any WorkflowStore, _ id: String, until fireAt: Date, owner: String?
    ) async throws -> String {
        let runID = try await store.startWorkflow(
            StartWorkflowRequest(workflowID: id, workflowType: "conformance", input: Payload(json: "{}"), now: t0)
        ).runID
        let task = try #require(
            try await claim(store, owner: "a", at: t0).first)
        let committed = try await store.completeWorkflowTask(
            WorkflowTaskCompletion(
                runID: runID, workflowID: id, leaseToken: task.leaseToken, expectedTaskVersion: task.taskVersion,
                consumedInboxThrough: nil, events: [(.timerStarted(seq: 1, fireAt: fireAt), t0)], eagerLeases: [:],
                timerOwner: owner, now: t0))
        #expect(committed == .committed(taskVersion: 1))
        return runID
    }

    /// The owner's commit of timer 1 firing and the run completing, as its cached execution would send it.
    private func firedAndCompleted(_ runID: String, _ id: String, expectedTaskVersion: Int = 1, at time: Date)
        -> WorkflowTaskCompletion
    {
        WorkflowTaskCompletion(
            runID: runID, workflowID: id, leaseToken: nil, expectedTaskVersion: expectedTaskVersion,
            consumedInboxThrough: nil,
            events: [(.timerFired(seq: 1), time), (.workflowCompleted(result: Payload(json: "\"rested\"")), time)],
            eagerLeases: [:], knownRun: KnownRun(historyLength: 2, constants: constants), timerOwner: "a", now: time)
    }

    @Test("the timer passes leave a worker's own timer to it until the grace has passed, then fire it",
          arguments: StoreBackend.allCases)
    func passesWaitForTheOwner(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let fireAt = t0.addingTimeInterval(60)
            let owned = try await sleepingRun(store, "owned", until: fireAt, owner: "a")
            let unowned = try await sleepingRun(store, "unowned", until: fireAt, owner: nil)
            #expect(try await store.nextWakeUp(after: t0) == fireAt)
            #expect(try await store.nextWakeUp(after: fireAt) == fireAt.addingTimeInterval(timerOwnerGrace))
            #expect(try await store.fireDueTimers(now: fireAt, limit: 10) == 1)
            #expect(try await store.fireDueTimers(now: fireAt.addingTimeInterval(timerOwnerGrace / 2), limit: 10) == 0)
            #expect(try await store.fireDueTimers(now: fireAt.addingTimeInterval(timerOwnerGrace), limit: 10) == 1)
            let woken = try await claim(store, owner: "b", at: fireAt.addingTimeInterval(1))
            #expect(Set(woken.map(\.runID)) == [owned, unowned])
            #expect(woken.allSatisfy { $0.inbox.map(\.kind) == [.timerFired(seq: 1)] })
        }
    }

    @Test("the owner commits its timer's firing with the run's next task; nothing is written when the run moved on or a pass fired it first",
          arguments: StoreBackend.allCases)
    func firedWithTheNextTask(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let fireAt = t0.addingTimeInterval(60)
            let runID = try await sleepingRun(store, "w", until: fireAt, owner: "a")
            // Out of step (an older task version): refused, the timer still waits.
            #expect(try await store.fireTimersAndContinue(
                [1], continuation: firedAndCompleted(runID, "w", expectedTaskVersion: 0, at: fireAt)) == nil)
            #expect(try await store.history(runID: runID).count == 2)
            #expect(try await store.fireTimersAndContinue([1], continuation: firedAndCompleted(runID, "w", at: fireAt)) == 2)
            let run = try #require(try await store.run(runID: runID))
            #expect(run.status == .completed && run.result == Payload(json: "\"rested\""))
            #expect(try await store.history(runID: runID).map(\.kind.name)
                    == ["workflowStarted", "timerStarted", "timerFired", "workflowCompleted"])
            #expect(try await store.fireDueTimers(now: fireAt.addingTimeInterval(3600), limit: 10) == 0)

            // A pass fired the timer first (the owner was late): the owner's commit is refused.
            let late = try await sleepingRun(store, "late", until: fireAt, owner: "a")
            #expect(try await store.fireDueTimers(now: fireAt.addingTimeInterval(timerOwnerGrace), limit: 10) == 1)
            #expect(try await store.fireTimersAndContinue([1], continuation: firedAndCompleted(late, "late", at: fireAt)) == nil)
            #expect(try await store.history(runID: late).count == 2)
            #expect(try await store.run(runID: late)?.status == .running)
            let task = try #require(try await claim(store, owner: "b", at: fireAt.addingTimeInterval(1)).first)
            #expect(task.runID == late && task.inbox.map(\.kind) == [.timerFired(seq: 1)])
        }
    }

    @Test("an owner that cannot continue the run queues its timers in the run's inbox, once",
          arguments: StoreBackend.allCases)
    func queuedByTheOwner(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let fireAt = t0.addingTimeInterval(60)
            let runID = try await sleepingRun(store, "w", until: fireAt, owner: "a")
            #expect(try await store.fireTimers([1], runID: runID, now: fireAt) == 1)
            #expect(try await store.fireTimers([1], runID: runID, now: fireAt) == 0)
            let task = try #require(try await claim(store, owner: "a", at: fireAt).first)
            #expect(task.runID == runID && task.inbox.map(\.kind) == [.timerFired(seq: 1)])
        }
    }

    private static func worker(_ store: any WorkflowStore, clock: any WorkflowClock = SystemClock()) -> Worker {
        var registry = WorkflowRegistry()
        registry.register(Nap.self)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return Worker(
            store: store, registry: registry, clock: clock,
            configuration: WorkerConfiguration(pollInterval: .milliseconds(50)),
            logger: logger)
    }

    @Test("a worker wakes the run it keeps in memory itself: the timer's row goes with the run's next commit, nothing passes through the inbox",
          arguments: StoreBackend.allCases)
    func wokenInMemory(backend: StoreBackend) async throws {
        try await backend.withStore { plain in
            let (log, store) = try StatementLog.wrapping(plain)
            // The clock stops at the timer's time: the timer passes, which wait half a second
            // more for its owner, cannot fire it, however slow the machine.
            let clock = ManualClock()
            let worker = Self.worker(store, clock: clock)
            var registry = WorkflowRegistry()
            registry.register(Nap.self)
            let client = WorkflowClient(store: store, registry: registry, clock: clock)
            let result = try await worker.withRunning {
                let handle = try await client.start(Nap.self, id: "nap", input: 200)
                try await waitFor("the run to sleep") {
                    try await store.history(runID: handle.runID).contains { $0.kind.name == "timerStarted" }
                }
                clock.advance(by: .milliseconds(200))
                return try await client.result(of: handle, as: Nap.self, timeout: .seconds(30))
            }
            #expect(result == "rested")
            let transactions = log.take()
            #expect(!transactions.joined().contains { $0.contains("INSERT INTO run_inbox") })
            let wake = transactions.filter { $0.contains { $0.contains("DELETE FROM timers WHERE run_id = ? AND seq = ?") } }
            #expect(wake.count == 1)
            #expect(wake.first?.contains { $0.contains("UPDATE workflow_runs SET status") } == true)
        }
    }

    @Test("when the owner stops before its timer, another worker's pass fires it once the grace has passed",
          arguments: StoreBackend.allCases)
    func ownerStopped(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            var registry = WorkflowRegistry()
            registry.register(Nap.self)
            let clock = ManualClock()
            let client = WorkflowClient(store: store, registry: registry, clock: clock)
            let handle = try await Self.worker(store, clock: clock).withRunning {
                let handle = try await client.start(Nap.self, id: "nap", input: 60_000)
                try await waitFor("the run to sleep") {
                    try await store.history(runID: handle.runID).contains { $0.kind.name == "timerStarted" }
                }
                return handle
            }
            #expect(try await store.run(runID: handle.runID)?.status == .running)
            clock.advance(by: .seconds(60) + .milliseconds(Int64(timerOwnerGrace * 1000)))
            let result = try await Self.worker(store, clock: clock).withRunning {
                try await client.result(of: handle, as: Nap.self, timeout: .seconds(30))
            }
            #expect(result == "rested")
            #expect(try await store.history(runID: handle.runID).contains { $0.kind == .timerFired(seq: 1) })
        }
    }
}
