import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting
import Workflows

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)

@Suite("Continue-as-new: one workflow id, a chain of short runs, no signal lost or counted twice")
struct ContinueAsNewTests {
    static func registry() -> WorkflowRegistry {
        var registry = testRegistry()
        registry.register(DiagnosticCounter.self)
        return registry
    }

    @Test("a counter continues as new every 3 signals; the total is exact and each run's history is short",
          arguments: StoreBackend.allCases)
    func counterChain(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let handle = try await env.client.start(
                DiagnosticCounter.self, id: "counter", input: .init(continueEvery: 3))
            for amount in 1...10 {
                try await env.client.signal(workflowID: "counter", name: "add", value: amount)
                try await env.runUntilIdle()
            }
            try await env.client.signal(workflowID: "counter", name: "stop")
            let final = try await env.result(of: handle, as: DiagnosticCounter.self)
            #expect(final.total == 55)
            #expect(final.signals == 10)

            let runs = try await env.client.list(RunQuery(workflowID: "counter"))
            #expect(runs.map(\.status) == [.completed, .continuedAsNew, .continuedAsNew, .continuedAsNew])
            // Each run names the one it continued from; the chain ends at the first run.
            #expect(runs.last?.runID == handle.runID)
            #expect(zip(runs, runs.dropFirst()).allSatisfy { $0.previousRunID == $1.runID })
            // Start, version marker, search attribute, three signals, continue-as-new.
            #expect(runs.allSatisfy { $0.historyLength <= 7 }, "\(runs.map(\.historyLength))")
            // Listing shows the workflow once, at its current run; describe links the earlier runs.
            let latest = try await env.client.list(RunQuery(latestRunPerWorkflow: true))
            #expect(latest.map(\.runID) == [runs[0].runID])
            let description = try await env.client.describe(workflowID: "counter")
            #expect(description.run.runID == runs[0].runID)
            #expect(description.previousRuns.map(\.runID) == runs.dropFirst().map(\.runID))
        }
    }

    @Test("signals that arrived before the run continued move to the next run in order, keeping their request ids",
          arguments: StoreBackend.allCases)
    func carriesUnconsumedSignals(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let handle = try await env.client.start(
                DiagnosticCounter.self, id: "counter", input: .init(continueEvery: 2))
            // Seven signals wait before the first task: each run takes two and carries the rest.
            for amount in [1, 2, 4, 8, 16, 32, 64] {
                try await env.client.signal(workflowID: "counter", name: "add", value: amount, requestID: "add-\(amount)")
            }
            try await env.client.signal(workflowID: "counter", name: "stop", requestID: "stop")
            let final = try await env.result(of: handle, as: DiagnosticCounter.self)
            #expect(final.total == 127)
            #expect(final.signals == 7)

            let runs = try await env.client.list(RunQuery(workflowID: "counter"))
            #expect(runs.count == 4)
            let second = try #require(runs.dropLast().last)
            let closing = try #require(try await env.store.history(runID: runs.last!.runID).last)
            guard case .workflowContinuedAsNew(_, let nextRunID, let signals) = closing.kind else {
                Issue.record("the first run did not close by continuing as new: \(closing.kind)")
                return
            }
            #expect(nextRunID == second.runID)
            #expect(signals.map(\.requestID) == ["add-4", "add-8", "add-16", "add-32", "add-64", "stop"])
            let secondHistory = try await env.store.history(runID: second.runID)
            #expect(secondHistory.filter { $0.kind.name == "signalReceived" }.count == 6)
        }
    }

    @Test("a retried signal is a duplicate in the run the chain continued into", arguments: StoreBackend.allCases)
    func requestIDsSpanTheChain(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            _ = try await env.client.start(DiagnosticCounter.self, id: "counter", input: .init(continueEvery: 1))
            try await env.client.signal(workflowID: "counter", name: "add", value: 5, requestID: "r1")
            try await env.runUntilIdle()
            let current = try #require(try await env.store.findRun(workflowID: "counter"))
            #expect(current.previousRunID != nil)
            let retried = try await env.client.signal(workflowID: "counter", name: "add", value: 5, requestID: "r1")
            #expect(retried == .duplicate(runID: current.runID))
            await #expect(throws: KeelError.self) {
                try await env.client.signal(workflowID: "counter", name: "add", value: 6, requestID: "r1")
            }
        }
    }

    @Test("a signal that arrives while a task continues as new moves to the next run, with its request id",
          arguments: StoreBackend.allCases)
    func signalRacingContinueAsNew(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let runID = try await store.startWorkflow(
                StartWorkflowRequest(workflowID: "w", workflowType: "race", input: .emptyObject, now: t0)).runID
            let task = try #require(try await store.claimWorkflowTasks(
                owner: "a", limit: 1, lease: .seconds(10), now: t0, cachedTaskVersion: { _ in nil }).first)
            _ = try await store.signal(SignalRequest(workflowID: "w", name: "late", requestID: "late-1", now: t0))
            _ = try await store.requestCancellation(workflowID: "w", reason: "racing", now: t0)
            let next = RunID.make()
            let carried = CarriedSignal(name: "early", payload: .emptyObject, requestID: nil)
            let result = try await store.completeWorkflowTask(WorkflowTaskCompletion(
                runID: runID, workflowID: "w", leaseToken: task.leaseToken, expectedTaskVersion: task.taskVersion,
                consumedInboxThrough: nil,
                events: [(.workflowContinuedAsNew(input: .emptyObject, runID: next, signals: [carried]), t0)],
                eagerLeases: [:], now: t0))
            #expect(result == .committed(taskVersion: 1))
            #expect(try await store.run(runID: runID)?.status == .continuedAsNew)
            // The carried signal first, then what the task never saw, in arrival order.
            let inbox = try await store.inbox(runID: next, after: nil)
            #expect(inbox.map(\.kind) == [
                .signalReceived(name: "early", payload: .emptyObject, requestID: nil),
                .signalReceived(name: "late", payload: .emptyObject, requestID: "late-1"),
                .cancelRequested(reason: "racing"),
            ])
            #expect(try await store.signal(SignalRequest(workflowID: "w", name: "late", requestID: "late-1", now: t0))
                    == .duplicate(runID: next))
            #expect(try await store.pendingWork(runID: runID).inbox.isEmpty)
        }
    }

    @Test("a burst of 450 signals that waited for the worker reaches the counter over several tasks; each run stays short",
          arguments: StoreBackend.allCases)
    func burstStaysShort(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let handle = try await env.client.start(DiagnosticCounter.self, id: "counter", input: .init(continueEvery: 100))
            for amount in 1...450 {
                try await env.client.signal(workflowID: "counter", name: "add", value: amount, requestID: "a-\(amount)")
            }
            try await env.client.signal(workflowID: "counter", name: "stop")
            let final = try await env.result(of: handle, as: DiagnosticCounter.self)
            #expect(final.total == 450 * 451 / 2)
            #expect(final.signals == 450)
            let runs = try await env.client.list(RunQuery(workflowID: "counter"))
            #expect(runs.count == 5)
            let longest = runs.map(\.historyLength).max() ?? 0
            #expect(longest <= SQLWorkflowStore.inboxBatch + 10, "\(runs.map(\.historyLength))")
        }
    }

    @Test("a run that completes while more signals wait than a task takes sees them all first; nothing is refused forever",
          arguments: StoreBackend.allCases)
    func completionBeyondTheBatch(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let handle = try await env.client.start(Collector.self, id: "collector", input: 1)
            for index in 0..<(SQLWorkflowStore.inboxBatch + 50) {
                try await env.client.signal(workflowID: "collector", name: "item", value: "i\(index)")
            }
            #expect(try await env.result(of: handle, as: Collector.self) == ["i0"])
            let signals = try await env.store.history(runID: handle.runID).filter { $0.kind.name == "signalReceived" }
            #expect(signals.count == SQLWorkflowStore.inboxBatch + 50)
        }
    }

    @Test("an add that overflows the total fails the run with a clear error; nothing traps",
          arguments: StoreBackend.allCases)
    func overflowFailsTheRun(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let handle = try await env.client.start(DiagnosticCounter.self, id: "counter", input: .init(total: Int.max))
            try await env.client.signal(workflowID: "counter", name: "add", value: 1)
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .failed)
            #expect(run.failure?.type == "CounterOverflow")
        }
    }
}
