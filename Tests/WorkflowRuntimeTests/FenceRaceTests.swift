import Foundation
import Synchronization
import Testing
import WorkflowRuntime

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)

@Suite("A commit that waits for a signal's transaction sees the signal")
struct FenceRaceTests {
    /// A signal's transaction holds the run's row (as every inbox write does) while a sticky
    /// commit that would close the run waits for it. On PostgreSQL the waiting lock returns the row
    /// as the signal left it but reads the inbox through the snapshot it started with; the fence
    /// must not take that for "nothing waits", or the run closes over the signal.
    @Test("a closing commit that waited for a signal's transaction is refused, and the run waits for a task",
          .timeLimit(.minutes(1)), arguments: StoreBackend.allCases)
    func closingWaitsForSignal(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let driver = try #require((store as? SQLWorkflowStore)?.driver)
            let runID = try await store.startWorkflow(
                StartWorkflowRequest(workflowID: "w", workflowType: "race", input: .emptyObject, now: t0)).runID
            let task = try #require(try await store.claimWorkflowTasks(
                owner: "a", limit: 1, lease: .seconds(10), now: t0, cachedTaskVersion: { _ in nil }).first)
            #expect(try await store.completeWorkflowTask(WorkflowTaskCompletion(
                runID: runID, workflowID: "w", leaseToken: task.leaseToken, expectedTaskVersion: task.taskVersion,
                consumedInboxThrough: nil, events: [(.timerStarted(seq: 1, fireAt: t0.addingTimeInterval(60)), t0)],
                eagerLeases: [:], now: t0)) == .committed(taskVersion: 1))

            // The signal's transaction: what `signal` writes, held open until the closing commit waits.
            let (locked, lockedSignal) = AsyncStream.makeStream(of: Void.self)
            let (release, releaseSignal) = AsyncStream.makeStream(of: Void.self)
            let signal = Task {
                try await driver.write { connection, _ in
                    try await connection.execute(
                        "UPDATE workflow_runs SET needs_task = \(driver.dialect.true), task_ready_at = ? WHERE run_id = ?",
                        t0, runID)
                    try await connection.execute(
                        "INSERT INTO run_inbox (run_id, kind, timestamp, body) VALUES (?, ?, ?, ?)", runID,
                        "signalReceived", t0,
                        try EventCodec.encode(HistoryEvent.Kind.signalReceived(name: "late", payload: .emptyObject, requestID: nil)))
                    lockedSignal.yield()
                    for await _ in release { break }
                }
            }
            for await _ in locked { break }
            let closing = Task {
                try await store.completeWorkflowTask(WorkflowTaskCompletion(
                    runID: runID, workflowID: "w", leaseToken: nil, expectedTaskVersion: 1, consumedInboxThrough: nil,
                    events: [(.workflowCompleted(result: .emptyObject), t0)], eagerLeases: [:], now: t0))
            }
            // Long enough for the closing commit to be waiting for the row (PostgreSQL), or queued
            // behind the writer (SQLite).
            try await Task.sleep(for: .milliseconds(300))
            releaseSignal.yield()
            try await signal.value

            guard case .rejected = try await closing.value else {
                Issue.record("the run closed over a signal it never saw")
                return
            }
            let run = try #require(try await store.run(runID: runID))
            #expect(run.status == .running)
            #expect(try await store.pendingWork(runID: runID).inbox.map(\.kind) == ["signalReceived"])
            let next = try await store.claimWorkflowTasks(owner: "b", limit: 1, lease: .seconds(10), now: t0,
                                                          cachedTaskVersion: { _ in nil })
            #expect(next.first?.inbox.count == 1)
        }
    }
}
