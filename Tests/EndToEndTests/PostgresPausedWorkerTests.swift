import Foundation
import KeelCLI
import KeelPostgres
import KeelTestSupport
import Logging
import PostgresNIO
import Testing
import WorkflowRuntime
import Workflows

@Suite("PostgreSQL: a paused worker does not block the others", .serialized)
struct PostgresPausedWorkerTests {
    static let lease = 2
    static let runs = 30
    static let steps = 20

    @Test("two workers, 30 runs of 20 steps, one SIGSTOPped mid-run: the other finishes every run within twice the lease plus the work; after SIGCONT nothing is recorded twice",
          .timeLimit(.minutes(3)))
    func pausedWorkerLosesItsLocksWithItsLease() async throws {
        try await PostgresTestServer.withFreshDatabase { base in
            // Idle-in-transaction below the 2 s lease, as README advises; statements keep the default.
            let url = base + "?idle_in_transaction_timeout=1"
            let scratch = try Scratch()
            defer { scratch.remove() }
            let migrated = try await WorkerBinary.run(["migrate"], database: url)
            try #require(migrated.status == 0, "migrate: \(migrated.stderr)")
            let logs = (0..<2).map { scratch.directory.appendingPathComponent("worker-\($0).log").path }
            let first = try await Daemon(
                database: url, logPath: logs[0], workflowTaskTimeout: Self.lease, activityTimeout: Self.lease)
            let second = try await Daemon(
                database: url, logPath: logs[1], workflowTaskTimeout: Self.lease, activityTimeout: Self.lease)
            for log in logs { try await Daemon.waitForStart(logPath: log, count: 1) }

            try await StoreLocation(url: url).withStore { store in
                let postgres = try #require((store as? SQLWorkflowStore)?.postgresDriver)
                #expect(try await Self.setting("idle_in_transaction_session_timeout", postgres) == "1s")
                #expect(try await Self.setting("statement_timeout", postgres) == "30s")
            }
            // The test's own client keeps the default settings: it is not the subject, and a busy
            // machine may stall it for more than a second.
            try await StoreLocation(url: base).withStore { store in
                let client = WorkflowClient(store: store)
                let started = ContinuousClock.now
                var handles: [WorkflowHandle] = []
                for index in 0..<Self.runs {
                    handles.append(try await client.start(
                        DiagnosticSequence.self, id: "paused-\(index)",
                        input: .init(steps: Self.steps, stepDelayMilliseconds: 50, stepTimeoutSeconds: Double(Self.lease))))
                }
                // Pause the first worker while both are in the middle of the runs.
                _ = try await eventually("a quarter of the steps done", timeout: .seconds(60)) {
                    ((try? await effectKeys(store).count) ?? 0) >= Self.runs * Self.steps / 4 ? true : nil
                }
                first.pause()
                let paused = ContinuousClock.now
                // The bound: twice the lease (the first worker's tasks are taken over when their
                // leases expire), the session timeout, and the work left — three quarters, for one
                // worker instead of two, at the pace measured so far (a busy machine is slower) —
                // with 5 s to spare. Without the session timeout, runs stay stuck while it is paused.
                let work = (paused - started) * 6
                let bound = .seconds(2 * Self.lease + 1 + 5) + work
                let closed: [WorkflowRun]
                do {
                    closed = try await waitForAll(handles, client: client, deadline: bound)
                } catch {
                    first.resume()
                    throw DaemonError(description: "not every run closed within \(bound) of the pause (work estimate \(work)): \(error)")
                }
                let takeover = ContinuousClock.now - paused
                first.resume()
                #expect(closed.allSatisfy { $0.status == .completed }, "\(closed.map(\.status))")
                #expect(takeover < bound)

                // The first worker wakes up with stale leases: its late outcomes must be refused.
                try await Task.sleep(for: .seconds(Self.lease + 1))
                #expect(try await first.stop(within: .seconds(60)) == 0)
                #expect(try await second.stop(within: .seconds(60)) == 0)

                let expected = Set(handles.flatMap { handle in (1...Self.steps).map { "\(handle.workflowID)/\(handle.runID)/\($0)" } })
                let keys = try await effectKeys(store)
                #expect(keys.count == expected.count)
                #expect(Set(keys) == expected)
                try await checkHistoriesConsistent(handles, store: store, steps: Self.steps)
            }
        }
    }

    private static func setting(_ name: String, _ store: PostgresDriver) async throws -> String? {
        let rows = try await store.client.query(PostgresQuery(unsafeSQL: "SHOW \(name)"), logger: Logger(label: "test"))
        for try await value in rows.decode(String.self) { return value }
        return nil
    }
}
