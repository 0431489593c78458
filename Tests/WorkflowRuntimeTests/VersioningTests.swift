import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

/// Three deploys of one workflow: before the change, with it versioned, and with the old branch dropped.
enum Versioned {
    static let name = "test.versioned"

    struct BeforeChange: Workflow {
        static let name = Versioned.name
        func run(context: WorkflowContext, input: Empty) async throws -> [String] {
            let first = try await context.execute(Uppercase.self, "a")
            try await context.sleep(for: .seconds(3600))
            let second = try await context.execute(Uppercase.self, "b")
            _ = try await context.waitForSignal("done", as: Empty.self)
            return [first, second]
        }
    }

    struct WithChange: Workflow {
        static let name = Versioned.name
        func run(context: WorkflowContext, input: Empty) async throws -> [String] {
            try await Versioned.changed(context, minSupported: 0)
        }
    }

    struct OldBranchDropped: Workflow {
        static let name = Versioned.name
        func run(context: WorkflowContext, input: Empty) async throws -> [String] {
            try await Versioned.changed(context, minSupported: 1)
        }
    }

    static func changed(_ context: WorkflowContext, minSupported: Int) async throws -> [String] {
        let first = try await context.execute(Uppercase.self, "a")
        try await context.sleep(for: .seconds(3600))
        let version = try await context.version("use-c", minSupported: minSupported, maxSupported: 1)
        let second = try await context.execute(Uppercase.self, version == 1 ? "c" : "b")
        _ = try await context.waitForSignal("done", as: Empty.self)
        return [first, second]
    }

    static func registry<W: Workflow>(_ workflow: W.Type) -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.register(workflow)
        registry.register(Uppercase())
        return registry
    }
}

@Suite("Versioning: code changes under runs already part-way through it")
struct VersioningTests {
    @Test("old runs keep their branch, new runs take the newest; a run on a dropped version is blocked, naming the change",
          arguments: StoreBackend.allCases)
    func versionedBranches(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let before = TestWorkflowEnvironment(registry: Versioned.registry(Versioned.BeforeChange.self), store: store)
            defer { before.shutdown() }
            let old = try await before.client.start(Versioned.BeforeChange.self, id: "old", input: Empty())
            let older = try await before.client.start(Versioned.BeforeChange.self, id: "older", input: Empty())
            try await before.runUntilIdle()
            try await before.advance(by: .seconds(3600))  // both are past the changed step, waiting for `done`

            let deployed = TestWorkflowEnvironment(
                registry: Versioned.registry(Versioned.WithChange.self), store: store, startTime: before.clock.now())
            defer { deployed.shutdown() }
            let new = try await deployed.client.start(Versioned.WithChange.self, id: "new", input: Empty())
            try await deployed.runUntilIdle()
            try await deployed.advance(by: .seconds(3600))
            for id in ["old", "new"] { try await deployed.client.signal(workflowID: id, name: "done") }
            #expect(try await deployed.result(of: old, as: Versioned.WithChange.self) == ["A", "B"])
            #expect(try await deployed.result(of: new, as: Versioned.WithChange.self) == ["A", "C"])

            let newHistory = try await store.history(runID: new.runID)
            #expect(newHistory.contains { $0.kind == .markerRecorded(seq: 3, name: "version:use-c", value: Payload(json: "1")) })
            let oldHistory = try await store.history(runID: old.runID)
            #expect(!oldHistory.contains { $0.kind.name == "markerRecorded" })
            let replayer = WorkflowReplayer(registry: Versioned.registry(Versioned.WithChange.self))
            try replayer.replay(newHistory, runID: new.runID)
            try replayer.replay(oldHistory, runID: old.runID)

            // The next deploy drops the old branch: a run that took it is blocked, not corrupted,
            // and `worker replay` would have said so first.
            let dropped = WorkflowReplayer(registry: Versioned.registry(Versioned.OldBranchDropped.self))
            let olderHistory = try await store.history(runID: older.runID)
            let refused = #expect(throws: KeelError.self) { try dropped.replay(olderHistory, runID: older.runID) }
            #expect(refused?.code == .nonDeterminism)
            #expect(refused?.message.contains("change 'use-c' is at version 0 in this run, and the code supports versions 1...1") == true)
            try dropped.replay(newHistory, runID: new.runID)

            let strict = TestWorkflowEnvironment(
                registry: Versioned.registry(Versioned.OldBranchDropped.self), store: store,
                startTime: deployed.clock.now())
            defer { strict.shutdown() }
            try await strict.client.signal(workflowID: "older", name: "done")
            try await strict.runUntilIdle()
            let run = try #require(try await store.run(runID: older.runID))
            #expect(run.status == .blocked)
            #expect(run.statusReason?.contains("change 'use-c'") == true)
            // Blocking records nothing: the history is as the old code left it.
            #expect(try await store.history(runID: older.runID) == olderHistory)
        }
    }
}
