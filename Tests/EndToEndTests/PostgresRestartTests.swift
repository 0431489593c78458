import Foundation
import KeelCLI
import KeelPostgres
import Logging
import PostgresNIO
import Synchronization
import Testing
import WorkflowRuntime
import Workflows

/// PostgreSQL restarting or cutting connections under running workers: they log it, back off,
/// reconnect and finish everything. Each test runs a private server (``PrivatePostgresServer``),
/// never the shared test server, so suites running meanwhile are not disturbed.
@Suite("PostgreSQL restarts and dropped connections", .serialized)
struct PostgresRestartTests {
    @Test("two workers, 40 runs of 3 steps, PostgreSQL restarted twice mid-run: every run completes, each effect once",
          .timeLimit(.minutes(3)))
    func restartsWhileWorkersRun() async throws {
        try await PrivatePostgresServer.with { server in
            let scratch = try Scratch()
            defer { scratch.remove() }
            let migrated = try await WorkerBinary.run(["migrate"], database: server.url)
            try #require(migrated.status == 0, "migrate: \(migrated.stderr)")
            let logs = (0..<2).map { scratch.directory.appendingPathComponent("worker-\($0).log").path }
            var workers: [Daemon] = []
            for log in logs { workers.append(try await Daemon(database: server.url, logPath: log)) }
            for log in logs { try await Daemon.waitForStart(logPath: log, count: 1) }

            try await StoreLocation(url: server.url).withStore { store in
                let client = WorkflowClient(store: store)
                var handles: [WorkflowHandle] = []
                for index in 0..<40 {
                    handles.append(try await client.start(
                        DiagnosticSequence.self, id: "restart-\(index)",
                        input: .init(steps: 3, stepDelayMilliseconds: 400, stepTimeoutSeconds: 2)))
                }
                for _ in 1...2 {
                    try await Task.sleep(for: .milliseconds(800))
                    try await server.restart()
                }
                let runs = try await waitForAll(handles, client: client, deadline: .seconds(90))
                for run in runs {
                    #expect(run.status == .completed, "\(run.workflowID): \(run.status) \(run.failure?.description ?? "")")
                }
                for worker in workers { #expect(try await worker.stop(within: .seconds(20)) == 0) }

                let expected = Set(handles.flatMap { handle in (1...3).map { "\(handle.workflowID)/\(handle.runID)/\($0)" } })
                let keys = try await effectKeys(store)
                #expect(keys.count == expected.count)
                #expect(Set(keys) == expected)
                try await checkHistoriesConsistent(handles, store: store)
                var retried = 0
                for handle in handles {
                    for event in try await store.history(runID: handle.runID) {
                        if case .activityCompleted(_, _, let attempt) = event.kind, attempt > 1 { retried += 1 }
                    }
                }
                print("restart test: \(retried) step(s) completed on a later attempt after a restart")
            }
            // The restarts really cut the workers off: each noticed, and reconnected on its own.
            for log in logs {
                let text = try String(contentsOfFile: log, encoding: .utf8)
                #expect(text.contains("PostgreSQL notifications interrupted; reconnecting"), "\(log): \(text.suffix(2_000))")
                #expect(text.contains("in-flight work drained"), "\(log): \(text.suffix(2_000))")
            }
        }
    }

    @Test("every connection terminated eight times under concurrent store work: no operation hangs",
          .timeLimit(.minutes(2)))
    func terminatedConnections() async throws {
        try await PrivatePostgresServer.with { server in
            let migrated = try await WorkerBinary.run(["migrate"], database: server.url)
            try #require(migrated.status == 0, "migrate: \(migrated.stderr)")
            try await StoreLocation(url: server.url).withStore { store in
                let postgres = try #require((store as? SQLWorkflowStore)?.postgresDriver)
                let client = WorkflowClient(store: store)
                let handle = try await client.start(DiagnosticWaitSignal.self, id: "waiting", input: .null)
                let tracker = OperationTracker()
                let loops = (0..<16).map { index in
                    Task {
                        var round = 0
                        while !tracker.isStopped {
                            round += 1
                            let operation = tracker.begin("loop \(index) round \(round)")
                            do {
                                switch round % 3 {
                                case 0: _ = try await store.run(runID: handle.runID)
                                case 1: _ = try await client.describe(workflowID: "waiting", includeHistory: true)
                                default: _ = try await store.claimActivityTasks(owner: "test", limit: 10, defaultLease: .seconds(5), now: Date())
                                }
                            } catch {
                                try? await Task.sleep(for: .milliseconds(20))
                            }
                            tracker.end(operation)
                        }
                    }
                }
                for _ in 0..<8 {
                    try await Task.sleep(for: .milliseconds(300))
                    try await terminateOtherBackends(postgres.client)
                }
                tracker.stop()
                // Work that would hang is abandoned here rather than awaited: the test must end.
                let stuck = try await tracker.waitUntilIdle(within: .seconds(10))
                #expect(stuck.isEmpty, "operations still running 10 s after the last cut: \(stuck)")
                if stuck.isEmpty {
                    for loop in loops { await loop.value }
                }
                // The store still works.
                #expect(try await store.run(runID: handle.runID)?.status == .running)
            }
        }
    }
}

/// Terminates every other connection to the current database (the role may signal its own backends).
private func terminateOtherBackends(_ client: PostgresClient) async throws {
    let logger = Logger(label: "test")
    for attempt in 1...50 {
        do {
            try await client.withLiveConnection { connection in
                _ = try await connection.query("""
                    SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                    WHERE datname = current_database() AND pid <> pg_backend_pid()
                    """, logger: logger).collect()
            }
            return
        } catch where attempt < 50 {
            // This connection was among those cut a moment ago.
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Operations in progress, with when each began.
private final class OperationTracker: Sendable {
    private struct State {
        var running: [Int: (name: String, since: ContinuousClock.Instant)] = [:]
        var nextID = 0
        var stopped = false
    }

    private let state = Mutex(State())

    var isStopped: Bool { state.withLock { $0.stopped } }

    func stop() { state.withLock { $0.stopped = true } }

    func begin(_ name: String) -> Int {
        state.withLock { state in
            defer { state.nextID += 1 }
            state.running[state.nextID] = (name, .now)
            return state.nextID
        }
    }

    func end(_ id: Int) {
        _ = state.withLock { $0.running.removeValue(forKey: id) }
    }

    /// Waits until nothing runs. - Returns: what still runs after `timeout`, with for how long.
    func waitUntilIdle(within timeout: Duration) async throws -> [String] {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if state.withLock({ $0.running.isEmpty }) { return [] }
            try await Task.sleep(for: .milliseconds(50))
        }
        return state.withLock { state in
            state.running.values.map { "\($0.name) (\(ContinuousClock.now - $0.since))" }.sorted()
        }
    }
}
