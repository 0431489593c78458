import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

@Suite("Engine: activities, timers, signals, cancellation")
struct EngineTests {
    @Test("a 21-day sleep finishes at once under the time-skipping environment", arguments: StoreBackend.allCases)
    func longSleepSkipsTime(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: testRegistry()) { env in
            let startedAt = env.clock.now()
            let handle = try await env.client.start(LongSleep.self, id: "sleeper", input: .init(days: 21, text: "hi"))
            let output = try await env.result(of: handle, as: LongSleep.self)
            #expect(output.text == "HI")
            #expect(output.sleptSeconds == 21 * 86_400)
            // The manual clock jumped to the timer: 21 days of workflow time, no real waiting.
            #expect(env.clock.now().timeIntervalSince(startedAt) == 21 * 86_400)
            let history = try await env.store.history(runID: handle.runID).map(\.kind.name)
            #expect(history == ["workflowStarted", "timerStarted", "timerFired", "activityScheduled", "activityCompleted", "workflowCompleted"])
        }
    }

    @Test("retries back off by the policy under the manual clock, with one idempotency key", arguments: StoreBackend.allCases, [true, false])
    func retryBackoff(backend: StoreBackend, eager: Bool) async throws {
        let flaky = FlakyService(failures: 3)
        try await backend.withEnvironment(registry: testRegistry(flaky: flaky), eagerActivities: eager) { env in
            let start = env.clock.now()
            let handle = try await env.client.start(RetryingWorkflow.self, id: "retry", input: .init())
            let result = try await env.result(of: handle, as: RetryingWorkflow.self)
            #expect(result == "ok after 4")
            let calls = flaky.calls
            #expect(calls.map(\.attempt) == [1, 2, 3, 4])
            #expect(Set(calls.map(\.key)) == ["retry/\(handle.runID)/1"])
            // 1 s, then 2 s, then 4 s between attempts.
            #expect(calls.map { $0.at.timeIntervalSince(start) } == [0, 1, 3, 7])
            // One "scheduled" and the final outcome, not an event per attempt.
            let kinds = try await env.store.history(runID: handle.runID).map(\.kind.name)
            #expect(kinds == ["workflowStarted", "activityScheduled", "activityCompleted", "workflowCompleted"])
        }
    }

    @Test("maximum attempts end the retries", arguments: StoreBackend.allCases)
    func maximumAttempts(backend: StoreBackend) async throws {
        let flaky = FlakyService(failures: 10)
        try await backend.withEnvironment(registry: testRegistry(flaky: flaky)) { env in
            let handle = try await env.client.start(RetryingWorkflow.self, id: "max", input: .init(maximumAttempts: 3))
            #expect(try await env.result(of: handle, as: RetryingWorkflow.self) == "gave up after 3: Transient")
            #expect(flaky.calls.count == 3)
        }
    }

    @Test("a non-retryable error type fails the activity at once", arguments: StoreBackend.allCases)
    func nonRetryable(backend: StoreBackend) async throws {
        let flaky = FlakyService(failures: 10, errorType: "CardDeclined")
        try await backend.withEnvironment(registry: testRegistry(flaky: flaky)) { env in
            let handle = try await env.client.start(RetryingWorkflow.self, id: "declined", input: .init(nonRetryable: ["CardDeclined"]))
            #expect(try await env.result(of: handle, as: RetryingWorkflow.self) == "gave up after 1: CardDeclined")
            #expect(flaky.calls.count == 1)
        }
    }

    @Test("signals sent before the workflow waits are buffered and delivered in order", arguments: StoreBackend.allCases)
    func signalsBeforeWait(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: testRegistry()) { env in
            let handle = try await env.client.start(Collector.self, id: "collector", input: 3)
            // Nothing has run yet: the run has not even started waiting.
            try await env.client.signal(workflowID: "collector", name: "item", value: "a")
            try await env.client.signal(workflowID: "collector", name: "item", value: "b")
            try await env.runUntilIdle()
            try await env.client.signal(workflowID: "collector", name: "item", value: "c")
            #expect(try await env.result(of: handle, as: Collector.self) == ["a", "b", "c"])
        }
    }

    @Test("a duplicate signal request id is acknowledged once and delivered once", arguments: StoreBackend.allCases)
    func duplicateSignalRequestID(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: testRegistry()) { env in
            let handle = try await env.client.start(Collector.self, id: "dedup", input: 2)
            let first = try await env.client.signal(workflowID: "dedup", name: "item", value: "a", requestID: "r1")
            let again = try await env.client.signal(workflowID: "dedup", name: "item", value: "a", requestID: "r1")
            #expect(first == .delivered(runID: handle.runID))
            #expect(again == .duplicate(runID: handle.runID))
            try await env.client.signal(workflowID: "dedup", name: "item", value: "b", requestID: "r2")
            #expect(try await env.result(of: handle, as: Collector.self) == ["a", "b"])
        }
    }

    @Test("a signal wait with a timeout returns the signal, or nil once the timer fires", arguments: StoreBackend.allCases)
    func signalTimeout(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: testRegistry()) { env in
            let timedOut = try await env.client.start(WaitWithTimeout.self, id: "late", input: 60)
            #expect(try await env.result(of: timedOut, as: WaitWithTimeout.self) == "timed out")

            let signalled = try await env.client.start(WaitWithTimeout.self, id: "early", input: 60)
            try await env.runUntilIdle()
            try await env.client.signal(workflowID: "early", name: "go", value: "hello")
            #expect(try await env.result(of: signalled, as: WaitWithTimeout.self) == "hello")
            let kinds = try await env.store.history(runID: signalled.runID).map(\.kind.name)
            #expect(kinds.contains("timerCancelled"))
            #expect(try await env.store.pendingWork(runID: signalled.runID).timers.isEmpty)
        }
    }

    @Test("a timer started and cancelled by one workflow task leaves no timer behind", arguments: StoreBackend.allCases)
    func timerStartedAndCancelledInOneTask(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: testRegistry()) { env in
            let handle = try await env.client.start(SleepCancelledAtOnce.self, id: "blink", input: "")
            try await env.runUntilIdle()
            let kinds = try await env.store.history(runID: handle.runID).map(\.kind.name)
            #expect(kinds == ["workflowStarted", "timerStarted", "timerCancelled"])
            #expect(try await env.store.pendingWork(runID: handle.runID).timers.isEmpty)
            try await env.client.signal(workflowID: "blink", name: "go", value: "done")
            #expect(try await env.result(of: handle, as: SleepCancelledAtOnce.self) == "done")
        }
    }

    @Test("starting an open workflow id returns the existing run", arguments: StoreBackend.allCases)
    func idempotentStart(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: testRegistry()) { env in
            let first = try await env.client.start(Collector.self, id: "same", input: 1)
            let second = try await env.client.start(Collector.self, id: "same", input: 1)
            #expect(first.created && !second.created)
            #expect(first.runID == second.runID)
            try await env.client.signal(workflowID: "same", name: "item", value: "x")
            _ = try await env.result(of: first, as: Collector.self)
            // Once closed, the id can be started again as a new run.
            let third = try await env.client.start(Collector.self, id: "same", input: 1)
            #expect(third.created && third.runID != first.runID)
        }
    }

    @Test("cancel: pending operations throw WorkflowCancelledError and the run ends cancelled", arguments: StoreBackend.allCases)
    func cancel(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: testRegistry()) { env in
            let handle = try await env.client.start(CancellableWorkflow.self, id: "c1", input: Empty())
            try await env.runUntilIdle()
            try await env.client.cancel(workflowID: "c1", reason: "customer withdrew")
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .cancelled)
            #expect(run.statusReason == "customer withdrew")
            #expect(try await env.store.pendingWork(runID: handle.runID).timers.isEmpty)

            let cleanup = try await env.client.start(CleanupOnCancel.self, id: "c2", input: Empty())
            try await env.runUntilIdle()
            try await env.client.cancel(workflowID: "c2", reason: "stop")
            #expect(try await env.result(of: cleanup, as: CleanupOnCancel.self) == "cleaned up after: stop")
        }
    }

    @Test("terminate closes the run at once with its reason and drops its pending work", arguments: StoreBackend.allCases)
    func terminate(backend: StoreBackend) async throws {
        try await backend.withEnvironment(registry: testRegistry()) { env in
            let handle = try await env.client.start(CancellableWorkflow.self, id: "t1", input: Empty())
            try await env.runUntilIdle()
            try await env.client.terminate(workflowID: "t1", reason: "bad data")
            let run = try #require(try await env.store.run(runID: handle.runID))
            #expect(run.status == .terminated)
            #expect(run.statusReason == "bad data")
            #expect(try await env.store.history(runID: handle.runID).last?.kind == .workflowTerminated(reason: "bad data"))
            #expect(try await env.store.pendingWork(runID: handle.runID).timers.isEmpty)
            await #expect(throws: KeelError.self) { try await env.client.terminate(workflowID: "t1", reason: "again") }
        }
    }

    @Test("async let, task groups, random, uuid and sideEffect replay identically", arguments: StoreBackend.allCases, [true, false])
    func parallelDeterminism(backend: StoreBackend, evictBetweenTasks: Bool) async throws {
        try await backend.withEnvironment(registry: testRegistry(), eagerActivities: false) { env in
            let handle = try await env.client.start(ParallelWorkflow.self, id: "par", input: ["a", "b", "c", "d"])
            if evictBetweenTasks {
                // Force a full replay at every step, as after a restart.
                while try await env.store.run(runID: handle.runID)?.status == .running {
                    env.evictCachedRuns()
                    guard try await env.runUntilIdle() else { break }
                }
            }
            let output = try await env.result(of: handle, as: ParallelWorkflow.self)
            #expect(output.pair == ["A", "B"])
            #expect(output.group == ["A", "B", "C", "D"])
            #expect(output.sideEffect == 42)
            // The recorded history replays against the same code without complaint.
            let history = try await env.store.history(runID: handle.runID)
            try WorkflowReplayer(registry: testRegistry()).replay(history, runID: handle.runID)
        }
    }
}
