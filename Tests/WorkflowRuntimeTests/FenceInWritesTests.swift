import Foundation
import Testing
import WorkflowRuntime

@Suite("Commits whose worker knows the run check their fence in their writes")
struct FenceInWritesTests {
    private let t0 = Date(timeIntervalSince1970: 1_800_000_000)
    private let constants = RunConstants(taskQueue: "default", startedBySchedule: false)
    private let step = HistoryEvent.Kind.activityScheduled(
        seq: 1, activity: "step", input: Payload(json: "1"), idempotencyKey: "key-1", options: ActivityOptions())

    /// Whether a transaction read the run's row first (``SQLWorkflowStore``'s locking read).
    private func readsRunFirst(_ statements: [String]) -> Bool {
        statements.contains { $0.contains("SELECT status, task_version") }
    }

    @Test("an eager start, a claimed task and a fast path in step each take one transaction and no read of the run",
          arguments: StoreBackend.allCases)
    func noLockingRead(backend: StoreBackend) async throws {
        try await backend.withStore { plain in
            let (log, store) = try StatementLog.wrapping(plain)

            // An eager start: the run's INSERT goes with the first task's writes.
            let runID = RunID.make()
            let started = try await store.startWorkflow(StartWorkflowRequest(
                workflowID: "w", runID: runID, workflowType: "conformance", input: Payload(json: "{}"), now: t0,
                firstTask: WorkflowTaskCompletion(
                    runID: runID, workflowID: "w", leaseToken: nil, expectedTaskVersion: 0, consumedInboxThrough: nil,
                    events: [(step, t0)],
                    eagerLeases: [1: ActivityLease(owner: "a", token: 7, expiresAt: t0.addingTimeInterval(30))], now: t0)))
            #expect(started.created)
            let start = log.take()
            #expect(start.count == 1)
            #expect(start.first?.count == 1 && start.first?.first?.hasPrefix("together: INSERT INTO workflow_runs") == true)

            // The fast path: the activity's outcome and the next task's timer.
            let result = Payload(json: "1")
            let continued = try await store.reportActivityAndContinue(
                ActivityReport(runID: runID, seq: 1, leaseToken: 7, attempt: 1, outcome: .completed(result), now: t0),
                continuation: WorkflowTaskCompletion(
                    runID: runID, workflowID: "w", leaseToken: nil, expectedTaskVersion: 1, consumedInboxThrough: nil,
                    events: [(.activityCompleted(seq: 1, result: result, attempt: 1), t0),
                             (.timerStarted(seq: 2, fireAt: t0.addingTimeInterval(60)), t0)],
                    eagerLeases: [:], knownRun: KnownRun(historyLength: 2, constants: constants), now: t0))
            #expect(continued == .continued(taskVersion: 2))
            let fastPath = log.take()
            #expect(fastPath.count == 1 && !readsRunFirst(fastPath[0]))

            // A claimed task (woken by a signal) that closes the run.
            _ = try await store.signal(SignalRequest(workflowID: "w", name: "go", now: t0))
            let task = try #require(try await store.claimWorkflowTasks(
                owner: "a", limit: 1, lease: .seconds(10), now: t0, cachedTaskVersion: { _ in nil }).first)
            _ = log.take()
            let closed = try await store.completeWorkflowTask(WorkflowTaskCompletion(
                runID: runID, workflowID: "w", leaseToken: task.leaseToken, expectedTaskVersion: task.taskVersion,
                consumedInboxThrough: task.inbox.last?.id,
                events: task.inbox.map { ($0.kind, t0) } + [(.workflowCompleted(result: result), t0)], eagerLeases: [:],
                knownRun: KnownRun(historyLength: 4, constants: constants), claimedInboxVersion: task.inboxVersion,
                now: t0))
            #expect(closed == .committed(taskVersion: 3))
            let claimed = log.take()
            #expect(claimed.count == 1 && !readsRunFirst(claimed[0]))
            #expect(try await store.run(runID: runID)?.status == .completed)
        }
    }
}
