import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting
import Workflows
import Activities

/// Starts a `Collector` child (it waits for one `item` signal) under `policy`; returns the
/// child's result when `wait`, else at once.
struct SpawnCollector: Workflow {
    static let name = "test.spawn-collector"

    struct Input: Codable, Sendable {
        var childID: String
        var policy: ParentClosePolicy
        var wait: Bool
    }

    func run(context: WorkflowContext, input: Input) async throws -> [String] {
        let child = try await context.startChild(
            Collector.self, id: input.childID, input: 1, options: .init(parentClosePolicy: input.policy))
        guard input.wait else { return ["started \(child.runID)"] }
        return try await child.result()
    }
}

/// Fails with a typed, non-retryable error with details.
struct DecliningChild: Workflow {
    static let name = "test.declining-child"

    func run(context: WorkflowContext, input: Empty) async throws -> String {
        throw try ApplicationError("the partner declined", type: "PartnerDeclined", nonRetryable: true,
                                   details: ["code": 42])
    }
}

/// Runs a `DecliningChild` and reports the failure it sees, field by field.
struct ObserveChildFailure: Workflow {
    static let name = "test.observe-child-failure"

    func run(context: WorkflowContext, input: Empty) async throws -> [String] {
        do {
            _ = try await context.executeChild(DecliningChild.self, input: Empty())
            return ["completed?"]
        } catch let failure as ChildWorkflowFailure {
            return [failure.status.rawValue, failure.cause.type, failure.cause.message, "\(failure.cause.nonRetryable)",
                    failure.cause.details?.description ?? "-"]
        }
    }
}

/// Runs a `diagnostics.counter` child with id `counter-child` and returns its final state.
struct CounterParent: Workflow {
    static let name = "test.counter-parent"

    func run(context: WorkflowContext, input: Int) async throws -> DiagnosticCounter.State {
        try await context.executeChild(
            DiagnosticCounter.self, id: "counter-child", input: .init(continueEvery: input))
    }
}

@Suite("Child workflows: started once, results and failures intact, parent-close policies")
struct ChildWorkflowTests {
    /// Diagnostic children record their effects in a SQLite file of their own.
    static let effectsPath = FileManager.default.temporaryDirectory
        .appendingPathComponent("keel-child-effects-\(UUID().uuidString).sqlite").path

    static func registry() -> WorkflowRegistry {
        var registry = testRegistry()
        registry.registerDiagnosticWorkflows()
        // swiftlint:disable:next force_try
        registry.registerDiagnosticActivities(effects: try! SQLiteDiagnosticEffects(path: effectsPath))
        registry.register(SpawnCollector.self)
        registry.register(DecliningChild.self)
        registry.register(ObserveChildFailure.self)
        registry.register(CounterParent.self)
        return registry
    }

    @Test("a parent runs three children; their ids derive from the parent's run and are stable on replay",
          arguments: StoreBackend.allCases)
    func childrenComplete(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let handle = try await env.client.start(
                DiagnosticParent.self, id: "dd", input: .init(children: 3, steps: 2))
            try await env.runUntilIdle()
            env.evictCachedRuns()  // the parent's code replays its starts from history
            let outputs = try await env.result(of: handle, as: DiagnosticParent.self)
            #expect(outputs.map(\.steps) == [2, 2, 2])

            let children = try await env.client.list(RunQuery(parentWorkflowID: "dd"))
            // Sequence 1 is the parent's stage; the children are operations 2 to 4.
            #expect(Set(children.map(\.workflowID)) == Set((2...4).map { "dd/\(handle.runID)/\($0)" }))
            #expect(children.allSatisfy { $0.status == .completed && $0.parent?.runID == handle.runID })
            #expect(try await env.client.list(RunQuery(workflowType: DiagnosticSequence.name)).count == 3)
            let history = try await env.store.history(runID: handle.runID).map(\.kind.name)
            for kind in ["childWorkflowRequested", "childWorkflowStarted", "childWorkflowClosed"] {
                #expect(history.filter { $0 == kind }.count == 3, "\(kind)")
            }
            let child = try await env.client.describe(workflowID: children[0].workflowID, includeHistory: true)
            guard case .workflowStarted(_, _, _, let parent)? = child.history?.first?.kind else {
                Issue.record("no workflowStarted")
                return
            }
            #expect(parent == ParentWorkflowInfo(workflowID: "dd", runID: handle.runID))
            let replayed = try await env.store.history(runID: handle.runID)
            try WorkflowReplayer(registry: Self.registry()).replay(replayed, runID: handle.runID)
        }
    }

    @Test("a failing child's type, message, non-retryable flag and details reach the parent intact",
          arguments: StoreBackend.allCases)
    func failureIntact(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let handle = try await env.client.start(ObserveChildFailure.self, id: "observer", input: Empty())
            #expect(try await env.result(of: handle, as: ObserveChildFailure.self)
                    == ["failed", "PartnerDeclined", "the partner declined", "true", "{\"code\":42}"])

            // Uncaught, the parent fails with the chain: ChildWorkflowFailure caused by the child's error.
            let failing = try await env.client.start(
                DiagnosticParent.self, id: "dd-fail", input: .init(children: 3, failChild: 2))
            let run = try await env.waitForClose(runID: failing.runID)
            #expect(run.status == .failed)
            #expect(run.failure?.type == "ChildWorkflowFailure")
            #expect(run.failure?.cause?.type == "InvalidValue")
            #expect(run.failure?.nonRetryable == true)
        }
    }

    @Test("when the parent completes first: terminate ends the child, requestCancel cancels it, abandon leaves it",
          arguments: StoreBackend.allCases)
    func parentClosePolicies(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            var expected: [String: RunStatus] = [:]
            for (policy, status) in [(ParentClosePolicy.terminate, RunStatus.terminated), (.requestCancel, .cancelled),
                                     (.abandon, .running)] {
                let parent = try await env.client.start(
                    SpawnCollector.self, id: "parent-\(policy)",
                    input: .init(childID: "child-\(policy)", policy: policy, wait: false))
                _ = try await env.waitForClose(runID: parent.runID)
                expected["child-\(policy)"] = status
            }
            try await env.runUntilIdle()
            for (childID, status) in expected {
                let child = try #require(try await env.store.findRun(workflowID: childID))
                #expect(child.status == status, "\(childID)")
            }
            let terminated = try #require(try await env.store.findRun(workflowID: "child-terminate"))
            #expect(terminated.statusReason?.contains("parent-close policy terminate") == true)
            // The abandoned child goes on alone.
            try await env.client.signal(workflowID: "child-abandon", name: "item", value: "still here")
            let abandoned = try #require(try await env.store.findRun(workflowID: "child-abandon"))
            #expect(try await env.waitForClose(runID: abandoned.runID).status == .completed)
        }
    }

    @Test("cancelling or terminating the parent reaches its waiting child by the child's policy",
          arguments: StoreBackend.allCases)
    func parentCancellation(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            for policy in [ParentClosePolicy.terminate, .requestCancel] {
                let parent = try await env.client.start(
                    SpawnCollector.self, id: "p-\(policy)", input: .init(childID: "c-\(policy)", policy: policy, wait: true))
                try await env.runUntilIdle()
                try await env.client.cancel(workflowID: "p-\(policy)", reason: "deal lost")
                #expect(try await env.waitForClose(runID: parent.runID).status == .cancelled)
                try await env.runUntilIdle()
                let child = try #require(try await env.store.findRun(workflowID: "c-\(policy)"))
                #expect(child.status == (policy == .terminate ? .terminated : .cancelled), "\(policy)")
            }
            let parent = try await env.client.start(
                SpawnCollector.self, id: "p-kill", input: .init(childID: "c-kill", policy: .terminate, wait: true))
            try await env.runUntilIdle()
            try await env.client.terminate(workflowID: "p-kill", reason: "operator")
            #expect(try await env.store.run(runID: parent.runID)?.status == .terminated)
            #expect(try await env.store.findRun(workflowID: "c-kill")?.status == .terminated)
        }
    }

    @Test("a child whose id an unrelated open run holds is not started, and the parent learns why",
          arguments: StoreBackend.allCases)
    func idTaken(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let other = try await env.client.start(Collector.self, id: "taken", input: 1)
            let parent = try await env.client.start(
                SpawnCollector.self, id: "p", input: .init(childID: "taken", policy: .terminate, wait: true))
            let run = try await env.waitForClose(runID: parent.runID)
            #expect(run.status == .failed)
            #expect(run.failure?.type == "ChildWorkflowStart")
            #expect(run.failure?.message.contains("already running (run \(other.runID))") == true)
            #expect(try await env.store.findRun(workflowID: "taken")?.runID == other.runID)
        }
    }

    @Test("a child that continues as new reports its last run's result to the parent", arguments: StoreBackend.allCases)
    func childContinuesAsNew(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: Self.registry()) { env in
            let parent = try await env.client.start(CounterParent.self, id: "holder", input: 2)
            try await env.runUntilIdle()
            for amount in [10, 20, 30] {
                try await env.client.signal(workflowID: "counter-child", name: "add", value: amount)
                try await env.runUntilIdle()
            }
            try await env.client.signal(workflowID: "counter-child", name: "stop")
            let state = try await env.result(of: parent, as: CounterParent.self)
            #expect(state.total == 60 && state.signals == 3)
            let runs = try await env.client.list(RunQuery(workflowID: "counter-child"))
            #expect(runs.count == 2)
            #expect(runs.allSatisfy { $0.parent?.runID == parent.runID })
        }
    }
}
