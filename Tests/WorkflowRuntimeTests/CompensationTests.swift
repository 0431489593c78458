import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

@Suite("Compensation (saga): reverse order, shielded from cancellation, retryable by an operator")
struct CompensationTests {
    private func withEnvironment(_ backend: StoreBackend = .sqlite, _ body: (TestWorkflowEnvironment, SagaLedger) async throws -> Void) async throws {
        let ledger = SagaLedger()
        try await backend.withStore { store in
            let env = TestWorkflowEnvironment(registry: sagaRegistry(ledger), store: store)
            defer { env.shutdown() }
            try await body(env, ledger)
        }
    }

    @Test("a failure at each step undoes the steps before it, newest first", arguments: ["a", "b", "c"])
    func reverseOrderAfterFailure(failingStep: String) async throws {
        try await withEnvironment { env, ledger in
            ledger.fail("do:\(failingStep)")
            let handle = try await env.client.start(ThreeStepSaga.self, id: "saga-\(failingStep)", input: .init())
            let run = try await env.waitForClose(runID: handle.runID)
            let done = ["a", "b", "c"].prefix { $0 != failingStep }
            let expected = done.map { "do:\($0)" } + ["do:\(failingStep)"] + done.reversed().map { "undo:\($0)" }
            #expect(ledger.actions == expected)
            // Nothing to compensate yet: a plain failure. Otherwise the run ends compensated, naming the cause.
            #expect(run.status == (done.isEmpty ? .failed : .compensated))
            #expect(run.failure?.description.contains("do:\(failingStep) failed") == true, "\(run.failure?.description ?? "-")")
        }
    }

    @Test("each compensation has its own idempotency key, fixed by its registration")
    func compensationKeys() async throws {
        try await withEnvironment { env, ledger in
            ledger.fail("do:c")
            let handle = try await env.client.start(ThreeStepSaga.self, id: "keys", input: .init())
            _ = try await env.waitForClose(runID: handle.runID)
            let undoKeys = ledger.entries.filter { $0.action.hasPrefix("undo:") }.map(\.key)
            #expect(undoKeys == ["keys/\(handle.runID)/compensation/1", "keys/\(handle.runID)/compensation/0"])
        }
    }

    @Test("cancellation runs the compensations, shielded from the cancellation", arguments: StoreBackend.allCases)
    func compensationAfterCancel(backend: StoreBackend) async throws {
        try await withEnvironment(backend) { env, ledger in
            let handle = try await env.client.start(ThreeStepSaga.self, id: "cancelled-saga", input: .init(waitForFinish: true))
            try await env.runUntilIdle()
            #expect(ledger.actions == ["do:a", "do:b", "do:c"])
            try await env.client.cancel(workflowID: "cancelled-saga", reason: "customer withdrew")
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .compensated)
            #expect(run.failure?.type == "WorkflowCancelledError")
            #expect(ledger.actions == ["do:a", "do:b", "do:c", "undo:c", "undo:b", "undo:a"])
            let kinds = try await env.store.history(runID: handle.runID).map(\.kind.name)
            let cancelled = try #require(kinds.firstIndex(of: "cancelRequested"))
            #expect(Array(kinds[cancelled...]) == ["cancelRequested", "compensationStarted",
                                                   "activityScheduled", "activityCompleted", "activityScheduled", "activityCompleted",
                                                   "activityScheduled", "activityCompleted", "workflowCompensated"])
        }
    }

    @Test("cancelled while waiting for an approval: the step is undone and the request withdrawn", arguments: StoreBackend.allCases)
    func cancelWhileWaitingForApproval(backend: StoreBackend) async throws {
        try await withEnvironment(backend) { env, ledger in
            let handle = try await env.client.start(StepThenApproval.self, id: "waiting-approval", input: "send-offer")
            try await env.runUntilIdle()
            let approval = try #require(try await env.client.approvals(ApprovalQuery(pendingOnly: true, runID: handle.runID)).first)
            try await env.client.cancel(workflowID: "waiting-approval", reason: "deal lost")
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .compensated)
            #expect(ledger.actions == ["do:send-offer", "undo:send-offer"])
            let (record, audit) = try await env.client.approval(approval.id)
            #expect(record.status == .withdrawn)
            #expect(audit.map(\.action) == [.requested, .withdrawn])
            #expect(try await env.store.pendingWork(runID: handle.runID).timers.isEmpty, "the deadline timer is gone")
        }
    }

    @Test("a step whose outcome is unknown is compensated too; compensations tolerate nothing to undo", arguments: [true, false])
    func unknownOutcome(effectHappens: Bool) async throws {
        try await withEnvironment { env, ledger in
            let handle = try await env.client.start(UnknownOutcomeSaga.self, id: "charge", input: .init(effectHappens: effectHappens))
            if !effectHappens { ledger.fail("do:charge") }
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .compensated)
            #expect(ledger.actions == ["do:reserve", "do:charge", "undo:charge", "undo:reserve"])
        }
    }

    @Test("a failing compensation parks the run as compensationFailed; an operator's retry completes it", arguments: StoreBackend.allCases)
    func failedCompensationRetried(backend: StoreBackend) async throws {
        try await withEnvironment(backend) { env, ledger in
            ledger.fail("do:c")
            ledger.fail("undo:b", times: 2)
            let handle = try await env.client.start(ThreeStepSaga.self, id: "stuck-saga", input: .init())
            try await env.runUntilIdle()
            var run = try #require(try await env.store.run(runID: handle.runID))
            #expect(run.status == .compensationFailed)
            #expect(run.statusReason?.contains("test.undo-step") == true, "\(run.statusReason ?? "-")")
            #expect(run.status.isOpen)

            // Only a compensationFailed run can be retried; it stays parked until someone does.
            try await env.advance(by: .seconds(86_400))
            #expect(try await env.store.run(runID: handle.runID)?.status == .compensationFailed)

            try await env.client.retryCompensation(workflowID: "stuck-saga", requestedBy: "ops")
            try await env.runUntilIdle()
            #expect(try await env.store.run(runID: handle.runID)?.status == .compensationFailed)  // failed a second time

            try await env.client.retryCompensation(workflowID: "stuck-saga", requestedBy: "ops")
            run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .compensated)
            #expect(ledger.actions == ["do:a", "do:b", "do:c", "undo:b", "undo:b", "undo:b", "undo:a"])
            // The retried compensation kept its idempotency key.
            let undoB = ledger.entries.filter { $0.action == "undo:b" }.map(\.key)
            #expect(Set(undoB).count == 1)
            let kinds = try await env.store.history(runID: handle.runID).map(\.kind.name)
            #expect(kinds.filter { $0 == "compensationFailed" }.count == 2)
            #expect(kinds.filter { $0 == "compensationRetryRequested" }.count == 2)

            await #expect(throws: KeelError.self) { try await env.client.retryCompensation(workflowID: "stuck-saga") }
        }
    }

    @Test("retry of a run whose compensation did not fail is refused")
    func retryRefused() async throws {
        try await withEnvironment { env, _ in
            _ = try await env.client.start(ThreeStepSaga.self, id: "waiting", input: .init(waitForFinish: true))
            try await env.runUntilIdle()
            do {
                try await env.client.retryCompensation(workflowID: "waiting")
                Issue.record("expected a refusal")
            } catch let error as KeelError {
                #expect(error.code == .invalidState)
            }
        }
    }

    @Test("parallel workstreams: results in input order, compensations in reverse registration order, replay deterministic")
    func parallelWorkstreams() async throws {
        try await withEnvironment { env, ledger in
            ledger.fail("do:consolidate")
            let streams = ["legal", "finance", "tech"]
            let handle = try await env.client.start(ParallelWorkstreams.self, id: "dd-room", input: streams)
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .compensated)
            let done = ledger.actions.filter { $0.hasPrefix("do:") && $0 != "do:consolidate" }
            #expect(Set(done) == Set(streams.map { "do:\($0)" }))
            // Each branch registers its compensation when the code sees its step's result: the
            // order of the completions in history (the branches run concurrently, so not the
            // order their effects happened in).
            let history = try await env.store.history(runID: handle.runID)
            var steps: [Int: String] = [:]
            var registered: [String] = []
            for event in history {
                switch event.kind {
                case .activityScheduled(let seq, DoStep.name, let input, _, _):
                    steps[seq] = try input.decode(as: DoStep.Input.self).step
                case .activityCompleted(let seq, _, _):
                    if let step = steps[seq] { registered.append(step) }
                default: break
                }
            }
            let undone = ledger.actions.filter { $0.hasPrefix("undo:") }
            #expect(undone == registered.reversed().map { "undo:\($0)" })

            // The same history replays to the same commands, also after a cold restart.
            try WorkflowReplayer(registry: sagaRegistry(ledger)).replay(history, runID: handle.runID)
        }
    }

    @Test("parallel workstreams succeed with results in input order, replayed the same after eviction")
    func parallelResults() async throws {
        try await withEnvironment { env, ledger in
            let streams = ["legal", "finance", "tech", "commercial"]
            let handle = try await env.client.start(ParallelWorkstreams.self, id: "dd-ok", input: streams)
            env.evictCachedRuns()
            #expect(try await env.result(of: handle, as: ParallelWorkstreams.self) == streams.map { "did \($0)" })
            let history = try await env.store.history(runID: handle.runID)
            try WorkflowReplayer(registry: sagaRegistry(ledger)).replay(history, runID: handle.runID)
        }
    }
}
