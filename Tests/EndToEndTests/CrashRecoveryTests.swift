import Foundation
import GRDB
import KeelSQLite
import KeelTestSupport
import Testing
import WorkflowRuntime
import Workflows

@Suite("Worker processes: crashes, shared SQLite file, CLI", .serialized)
struct CrashRecoveryTests {
    @Test("SIGKILL of the worker mid-run, three times: every sequence completes and each effect key is recorded exactly once",
          .timeLimit(.minutes(3)))
    func crashAndRestart() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        #expect(try await WorkerBinary.run(["migrate"], database: scratch.databaseURL).status == 0)
        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let client = WorkflowClient(store: store)

        func startDaemon(_ number: Int) async throws -> Daemon {
            try await Daemon(database: scratch.databaseURL, logPath: scratch.logPath, extraArguments: ["--identity", "crash-\(number)"])
        }
        var daemon = try await startDaemon(1)
        try await Daemon.waitForStart(logPath: scratch.logPath, count: 1)
        let runs = 30
        let steps = 6
        var handles: [WorkflowHandle] = []
        for index in 0..<runs {
            handles.append(try await client.start(
                DiagnosticSequence.self, id: "crash-\(index)",
                input: .init(steps: steps, stepDelayMilliseconds: 300, stepTimeoutSeconds: 1)))
        }
        let database = try DatabaseQueue(path: scratch.databasePath)
        for restart in 1...3 {
            // Kill the moment a step is leased to the live worker, so the kill interrupts it. One
            // query per poll: on a loaded machine a poll per run lets the work finish unobserved.
            _ = try await eventually("a step in flight on worker crash-\(restart)", interval: .milliseconds(10)) {
                try await database.read { db in
                    try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM activity_tasks WHERE lease_owner = ?)",
                                      arguments: ["crash-\(restart)"])
                } == true ? true : nil
            }
            await daemon.kill()
            daemon = try await startDaemon(restart + 1)
            try await Daemon.waitForStart(logPath: scratch.logPath, count: restart + 1)
        }
        for handle in handles {
            let run = try await client.waitForClose(runID: handle.runID, timeout: .seconds(90))
            #expect(run.status == .completed, "\(handle.workflowID): \(run.status) \(run.failure?.description ?? "")")
        }
        #expect(try await daemon.terminate() == 0)

        let expectedKeys = Set(handles.flatMap { handle in (1...steps).map { "\(handle.workflowID)/\(handle.runID)/\($0)" } })
        let recorded = try await DatabaseQueue(path: scratch.databasePath).read { db in
            try String.fetchAll(db, sql: "SELECT idempotency_key FROM diagnostic_effects")
        }
        #expect(recorded.count == expectedKeys.count)
        #expect(Set(recorded) == expectedKeys)
        // The crashes really interrupted work: steps were taken over after their lease expired.
        var retried = 0
        for handle in handles {
            for event in try await store.history(runID: handle.runID) {
                if case .activityCompleted(_, _, let attempt) = event.kind, attempt > 1 { retried += 1 }
            }
        }
        let log = try String(contentsOfFile: scratch.logPath, encoding: .utf8)
        #expect(log.components(separatedBy: "worker started").count - 1 == 4)
        #expect(retried > 0, "the kills interrupted steps, which completed on a later attempt")
        print("crash test: \(retried) step(s) completed on a later attempt after a SIGKILL")
    }

    @Test("SIGTERM lets the step in flight finish and commit, then exits 0", .timeLimit(.minutes(1)))
    func gracefulDrain() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        #expect(try await WorkerBinary.run(["migrate"], database: scratch.databaseURL).status == 0)
        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let client = WorkflowClient(store: store)
        let daemon = try await Daemon(database: scratch.databaseURL, logPath: scratch.logPath)
        try await Daemon.waitForStart(logPath: scratch.logPath, count: 1)
        let handle = try await client.start(DiagnosticSequence.self, id: "drain",
                                            input: .init(steps: 3, stepDelayMilliseconds: 1500, stepTimeoutSeconds: 10))
        // Wait until the first step is running.
        while try await store.pendingWork(runID: handle.runID).activities.first?.leaseOwner == nil {
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(try await daemon.terminate() == 0)
        let completed = try await store.history(runID: handle.runID).filter { $0.kind.name == "activityCompleted" }
        #expect(completed.count == 1)
        let log = try String(contentsOfFile: scratch.logPath, encoding: .utf8)
        #expect(log.contains("in-flight work drained"))
    }
}
