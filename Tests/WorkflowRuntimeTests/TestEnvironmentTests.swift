import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting

@Suite("The time-skipping test environment")
struct TestEnvironmentTests {
    @Test("shutdown deletes only a database file the environment created, never one it was given")
    func keepsGivenDatabase() async throws {
        let given = FileManager.default.temporaryDirectory.appendingPathComponent("keel-given-\(UUID().uuidString).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: given + suffix) } }
        let first = try await TestWorkflowEnvironment(registry: testRegistry(), databasePath: given)
        let handle = try await first.client.start(LongSleep.self, id: "kept", input: .init(days: 1, text: "x"))
        first.shutdown()
        #expect(FileManager.default.fileExists(atPath: given))

        // The same file serves a second environment (e.g. the same runs with changed code).
        let second = try await TestWorkflowEnvironment(registry: testRegistry(), databasePath: given)
        #expect(try await second.result(of: handle, as: LongSleep.self).text == "X")
        second.shutdown()
        #expect(FileManager.default.fileExists(atPath: given))

        let own = try await TestWorkflowEnvironment(registry: testRegistry())
        let created = try #require(own.databasePath)
        #expect(FileManager.default.fileExists(atPath: created))
        own.shutdown()
        #expect(!FileManager.default.fileExists(atPath: created))
    }
}

/// Sleeps `input` milliseconds on the engine's clock, heartbeating never; notes its attempt.
struct SleepsOnClock: Activity {
    static let name = "test.sleeps-on-clock"
    let journal: AttemptJournal

    func run(context: ActivityContext, input: Int) async throws -> Int {
        journal.record("start \(context.attempt)")
        if context.attempt == 1 || input < 10_000 { try await context.sleep(for: .milliseconds(input)) }
        return context.attempt
    }
}

/// Runs `count` ``SleepsOnClock`` activities at once; returns the workflow time they took, in
/// milliseconds, and the attempt each finished on.
struct SleepsInParallel: Workflow {
    static let name = "test.sleeps-in-parallel"

    struct Input: Codable, Sendable {
        var count: Int
        var milliseconds: Int
        var heartbeatTimeoutSeconds: Double?
    }

    func run(context: WorkflowContext, input: Input) async throws -> [Int] {
        let started = context.now
        let options = ActivityOptions(
            retryPolicy: RetryPolicy(initialInterval: .seconds(1)),
            startToCloseTimeout: .seconds(7 * 86_400),
            heartbeatTimeout: input.heartbeatTimeoutSeconds.map { .seconds($0) })
        let attempts = try await context.parallel(Array(0..<input.count)) { _ in
            try await context.execute(SleepsOnClock.self, input.milliseconds, options: options)
        }
        return [Int((context.now.timeIntervalSince(started) * 1000).rounded())] + attempts
    }
}

@Suite("The test environment runs activities as a worker does, on its skipped clock")
struct TestEnvironmentActivityTests {
    static func registry(_ journal: AttemptJournal) -> WorkflowRegistry {
        var registry = WorkflowRegistry()
        registry.register(SleepsInParallel.self)
        registry.register(SleepsOnClock(journal: journal))
        return registry
    }

    @Test("five activities that each sleep 300 ms run at once: 300 ms of workflow time, not 1.5 s")
    func concurrentActivities() async throws {
        let journal = AttemptJournal()
        let env = try await TestWorkflowEnvironment(registry: Self.registry(journal))
        defer { env.shutdown() }
        let handle = try await env.client.start(SleepsInParallel.self, id: "five", input: .init(count: 5, milliseconds: 300))
        let outcome = try await env.result(of: handle, as: SleepsInParallel.self)
        #expect(outcome == [300, 1, 1, 1, 1, 1])
        #expect(journal.all.count == 5)
    }

    @Test("an attempt that sleeps a day without heartbeating meets its one-minute heartbeat timeout in skipped time, and is retried")
    func heartbeatTimeoutInSkippedTime() async throws {
        let journal = AttemptJournal()
        let env = try await TestWorkflowEnvironment(registry: Self.registry(journal))
        defer { env.shutdown() }
        let handle = try await env.client.start(
            SleepsInParallel.self, id: "stalls", input: .init(count: 1, milliseconds: 86_400_000, heartbeatTimeoutSeconds: 60))
        let outcome = try await env.result(of: handle, as: SleepsInParallel.self)
        // The watchdog stops attempt 1 at one minute; attempt 2 starts after the 1 s retry interval.
        #expect(outcome == [61_000, 2])
        #expect(journal.all == ["start 1", "start 2"])
    }
}

/// Works in one-minute naps on the clock until cancelled, noting when its worker starts shutting
/// down; once an attempt was stopped that way, the next finishes at once.
struct NapsUntilStopped: Activity {
    static let name = "test.naps-until-stopped"
    let journal: AttemptJournal

    func run(context: ActivityContext, input: String) async throws -> String {
        journal.record("start \(context.attempt) \(context.idempotencyKey)")
        if journal.all.contains("cancelled") { return "finished after a takeover" }
        var noticed = false
        do {
            while true {
                if context.isWorkerShuttingDown, !noticed {
                    noticed = true
                    journal.record("noticed shutdown")
                }
                try await context.sleep(for: .seconds(60))
            }
        } catch {
            journal.record("cancelled")
            throw error
        }
    }
}

struct RunsNaps: Workflow {
    static let name = "test.runs-naps"
    func run(context: WorkflowContext, input: String) async throws -> String {
        try await context.execute(NapsUntilStopped.self, input, options: .init(startToCloseTimeout: .seconds(86_400)))
    }
}

extension TestEnvironmentActivityTests {
    @Test("stopWorker: attempts are told, cancelled when the grace period ends in skipped time, and given back uncounted for the next worker")
    func shutdownInSkippedTime() async throws {
        let journal = AttemptJournal()
        var registry = WorkflowRegistry()
        registry.register(RunsNaps.self)
        registry.register(NapsUntilStopped(journal: journal))
        let first = try await TestWorkflowEnvironment(registry: registry)
        let handle = try await first.client.start(RunsNaps.self, id: "deploy", input: "x")
        try await first.runUntilIdle()
        let stoppedAt = first.clock.now()
        try await first.stopWorker(grace: .seconds(300))
        #expect(first.clock.now().timeIntervalSince(stoppedAt) == 300)
        let key = "deploy/\(handle.runID)/1"
        #expect(journal.all == ["start 1 \(key)", "noticed shutdown", "cancelled"])

        let second = try await TestWorkflowEnvironment(
            registry: registry, startTime: first.clock.now(), databasePath: first.databasePath)
        defer {
            second.shutdown()
            first.shutdown()
        }
        #expect(try await second.result(of: handle, as: RunsNaps.self) == "finished after a takeover")
        // Given back, not failed: the same attempt number and key, at once (no lease to wait out).
        #expect(journal.all.last == "start 1 \(key)")
        #expect(second.clock.now() == first.clock.now())
    }
}
