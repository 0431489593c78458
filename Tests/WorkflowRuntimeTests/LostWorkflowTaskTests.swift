import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

/// A workflow task whose claimers keep losing their lease — the worker processing it crashed,
/// hung or was killed, as when the run's code or input crashes the process — is blocked after a
/// few claims instead of taking every worker down in turn.
@Suite("Workflow tasks that keep losing their workers")
struct LostWorkflowTaskTests {
    /// Claims the run's task as a worker that dies at once: its lease then runs out.
    private func loseClaim(_ env: TestWorkflowEnvironment, runID: String, worker: Int) async throws {
        let claimed = try await env.store.claimWorkflowTasks(owner: "doomed-\(worker)", limit: 10, lease: .seconds(1), now: env.clock.now(),
                                                             cachedTaskVersion: { _ in nil })
        #expect(claimed.map(\.runID) == [runID], "claim \(worker)")
        #expect(claimed.first?.claims == worker, "each lost claim counts")
        env.clock.advance(by: .seconds(2))
    }

    @Test("five lost claims in a row: the next claimer blocks the run with the reason; a worker start retries it",
          arguments: StoreBackend.allCases)
    func blockedAfterLostClaims(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let env = TestWorkflowEnvironment(registry: testRegistry(), store: store)
            defer { env.shutdown() }
            let handle = try await env.client.start(LongSleep.self, id: "poison", input: .init(days: 1, text: "x"))
            let healthy = try await env.client.start(LongSleep.self, id: "healthy", input: .init(days: 1, text: "y"))
            try await env.runUntilIdle()  // both sleep now
            try await env.client.signal(workflowID: "poison", name: "wake")  // gives the poison run a task again
            for worker in 1...5 { try await loseClaim(env, runID: handle.runID, worker: worker) }
            try await env.runUntilIdle()

            let blocked = try #require(try await store.run(runID: handle.runID))
            #expect(blocked.status == .blocked)
            #expect(blocked.statusReason?.contains("claimed 5 times in a row without finishing") == true, "\(blocked.statusReason ?? "")")
            #expect(try await store.run(runID: healthy.runID)?.status == .running, "the other run goes on")

            // A worker start retries blocked runs, with a fresh count: the run completes.
            #expect(try await store.unblockRuns(now: env.clock.now()) == 1)
            #expect(try await env.result(of: handle, as: LongSleep.self).text == "X")
        }
    }

    @Test("a commit resets the count: losses spread over a run's life never block it", arguments: StoreBackend.allCases)
    func commitResetsTheCount(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let env = TestWorkflowEnvironment(registry: testRegistry(), store: store)
            defer { env.shutdown() }
            let handle = try await env.client.start(Collector.self, id: "collector", input: 3)
            for item in ["a", "b", "c"] {
                try await env.client.signal(workflowID: "collector", name: "item", value: item)
                for worker in 1...4 { try await loseClaim(env, runID: handle.runID, worker: worker) }
                try await env.runUntilIdle()
                #expect(try await store.run(runID: handle.runID)?.status != .blocked)
            }
            #expect(try await env.result(of: handle, as: Collector.self) == ["a", "b", "c"])
        }
    }
}
