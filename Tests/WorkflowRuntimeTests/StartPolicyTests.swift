import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

@Suite("Signal-with-start and id reuse policies")
struct StartPolicyTests {
    @Test("signal-with-start on a missing id starts the run with the signal as the first thing its code receives",
          arguments: StoreBackend.allCases)
    func signalWithStartMissing(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: testRegistry()) { env in
            let (handle, outcome) = try await env.client.signalWithStart(
                Collector.self, id: "envelope-1", input: 2, signal: "item", value: "signed", requestID: "webhook-1")
            #expect(handle.created)
            #expect(outcome == .delivered(runID: handle.runID))
            let history = try await env.store.history(runID: handle.runID)
            #expect(history.map(\.kind.name) == ["workflowStarted"])
            #expect(try await env.store.pendingWork(runID: handle.runID).inbox.map(\.kind) == ["signalReceived"])
            // The webhook's retry is a duplicate; a second signal reaches the same run.
            let retry = try await env.client.signalWithStart(
                Collector.self, id: "envelope-1", input: 2, signal: "item", value: "signed", requestID: "webhook-1")
            #expect(retry.handle == WorkflowHandle(workflowID: "envelope-1", runID: handle.runID, created: false))
            #expect(retry.signal == .duplicate(runID: handle.runID))
            try await env.client.signal(workflowID: "envelope-1", name: "item", value: "filed")
            #expect(try await env.result(of: handle, as: Collector.self) == ["signed", "filed"])
            let processed = try await env.store.history(runID: handle.runID)
            #expect(processed.dropFirst().first?.kind.name == "signalReceived")
        }
    }

    @Test("signal-with-start on an open id only signals; on a closed id it starts a new run",
          arguments: StoreBackend.allCases)
    func signalWithStartOpenAndClosed(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: testRegistry()) { env in
            let open = try await env.client.start(Collector.self, id: "deal", input: 1)
            try await env.runUntilIdle()
            let (again, outcome) = try await env.client.signalWithStart(
                Collector.self, id: "deal", input: 5, signal: "item", value: "a")
            #expect(again == WorkflowHandle(workflowID: "deal", runID: open.runID, created: false))
            #expect(outcome == .delivered(runID: open.runID))
            #expect(try await env.result(of: open, as: Collector.self) == ["a"])

            let (next, nextOutcome) = try await env.client.signalWithStart(
                Collector.self, id: "deal", input: 1, signal: "item", value: "b")
            #expect(next.created && next.runID != open.runID)
            #expect(nextOutcome == .delivered(runID: next.runID))
            #expect(try await env.result(of: next, as: Collector.self) == ["b"])

            // A refused start delivers nothing.
            do {
                _ = try await env.client.signalWithStart(
                    Collector.self, id: "deal", input: 1, signal: "item", value: "c", idReusePolicy: .rejectDuplicate)
                Issue.record("rejectDuplicate started a closed id again")
            } catch let error as KeelError {
                #expect(error.code == .workflowIDReused)
            }
            #expect(try await env.client.list(RunQuery(workflowID: "deal")).count == 2)
        }
    }

    @Test("each id reuse policy after a completion, a failure and with an open run", arguments: StoreBackend.allCases)
    func reusePolicies(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: testRegistry()) { env in
            func start(_ id: String, _ policy: WorkflowIDReusePolicy) async throws -> WorkflowHandle {
                try await env.client.start(Collector.self, id: id, input: 1, idReusePolicy: policy)
            }
            func refused(_ id: String, _ policy: WorkflowIDReusePolicy) async throws -> String? {
                do {
                    _ = try await start(id, policy)
                    return nil
                } catch let error as KeelError where error.code == .workflowIDReused {
                    return error.message
                }
            }
            // "done" completed; "broken" was terminated.
            let done = try await start("done", .allowDuplicate)
            try await env.client.signal(workflowID: "done", name: "item", value: "x")
            _ = try await env.waitForClose(runID: done.runID)
            let broken = try await start("broken", .allowDuplicate)
            try await env.client.terminate(workflowID: "broken", reason: "test")

            #expect(try await refused("done", .allowDuplicateFailedOnly)?.contains("allowDuplicateFailedOnly") == true)
            #expect(try await refused("done", .rejectDuplicate)?.contains("rejectDuplicate") == true)
            #expect(try await refused("broken", .rejectDuplicate) != nil)
            let retried = try await start("broken", .allowDuplicateFailedOnly)
            #expect(retried.created && retried.runID != broken.runID)

            // With an open run every policy but terminateIfRunning returns it.
            for policy in [WorkflowIDReusePolicy.allowDuplicate, .allowDuplicateFailedOnly, .rejectDuplicate] {
                #expect(try await start("broken", policy) == WorkflowHandle(
                    workflowID: "broken", runID: retried.runID, created: false))
            }
            let replaced = try await start("broken", .terminateIfRunning)
            #expect(replaced.created)
            let terminated = try #require(try await env.store.run(runID: retried.runID))
            #expect(terminated.status == .terminated)
            #expect(terminated.statusReason?.contains("terminateIfRunning") == true)
            #expect(try await env.store.findRun(workflowID: "broken")?.runID == replaced.runID)
            #expect(try await start("fresh", .rejectDuplicate).created)
        }
    }
}
