import Foundation
import GRDB
import KeelPostgres
import KeelSQLite
import Logging
import PostgresNIO
import Testing
import WorkflowRuntime

/// Runs one SQL statement on the store's own database (to corrupt a row as a bad edit or another
/// version would).
private func execute(_ sql: String, on store: any WorkflowStore) async throws {
    if let postgres = (store as? SQLWorkflowStore)?.postgresDriver {
        try await postgres.client.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test"))
    } else {
        let sqlite = try #require((store as? SQLWorkflowStore)?.sqliteDriver)
        try await DatabaseQueue(path: sqlite.path).write { try $0.execute(sql: sql) }
    }
}

@Suite("A row a worker cannot decode fails its run, not every claim")
struct CorruptRowTests {
    private let now = Date(timeIntervalSince1970: 1_800_000_000)

    private func start(_ store: any WorkflowStore, _ id: String) async throws -> StartWorkflowResult {
        try await store.startWorkflow(StartWorkflowRequest(workflowID: id, workflowType: "any", input: .emptyObject, now: now))
    }

    @Test("an undecodable history parks its run as blocked with the reason; the other runs are claimed", arguments: StoreBackend.allCases)
    func undecodableHistory(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let bad = try await start(store, "bad")
            let good = try await start(store, "good")
            try await execute("UPDATE history_events SET body = \(backend == .postgres ? "'\\x7b7d'::bytea" : "x'7b7d'") WHERE run_id = '\(bad.runID)'",
                              on: store)
            let tasks = try await store.claimWorkflowTasks(owner: "w", limit: 10, lease: .seconds(10), now: now, cachedTaskVersion: { _ in nil })
            #expect(tasks.map(\.runID) == [good.runID])
            let parked = try #require(try await store.run(runID: bad.runID))
            #expect(parked.status == .blocked)
            #expect(parked.statusReason?.contains("cannot be decoded") == true, "\(parked.statusReason ?? "")")
        }
    }

    @Test("undecodable activity options fail that attempt for good, naming why; the other activities are claimed", arguments: StoreBackend.allCases)
    func undecodableActivityOptions(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "r")
            let task = try #require(try await store.claimWorkflowTasks(owner: "w", limit: 1, lease: .seconds(10), now: now,
                                                                     cachedTaskVersion: { _ in nil }).first)
            let events: [HistoryEvent.Kind] = [1, 2].map { seq in
                .activityScheduled(seq: seq, activity: "step", input: Payload(json: "\(seq)"), idempotencyKey: "key-\(seq)",
                                   options: ActivityOptions(startToCloseTimeout: .seconds(5)))
            }
            let completion = WorkflowTaskCompletion(
                runID: run.runID, workflowID: "r", leaseToken: task.leaseToken, expectedTaskVersion: task.taskVersion,
                consumedInboxThrough: nil, events: events.map { ($0, now) }, eagerLeases: [:], hasPendingApprovals: false, now: now)
            guard case .committed = try await store.completeWorkflowTask(completion) else { Issue.record("commit refused"); return }
            try await execute("UPDATE activity_tasks SET options = \(backend == .postgres ? "'\\x5b5d'::bytea" : "x'5b5d'") WHERE seq = 1",
                              on: store)

            let claimed = try await store.claimActivityTasks(owner: "w", limit: 10, defaultLease: .seconds(60), now: now)
            #expect(claimed.map(\.seq) == [2])
            let inbox = try await store.pendingWork(runID: run.runID).inbox
            #expect(inbox.count == 1)
            #expect(inbox.first?.detail.contains("UndecodableActivityRow") == true, "\(inbox.map(\.detail))")
        }
    }
}
