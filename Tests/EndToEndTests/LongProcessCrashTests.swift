import Foundation
import GRDB
import KeelSQLite
import KeelTestSupport
import Testing
import WorkflowRuntime
import Workflows

@Suite("Child workflows and continue-as-new under SIGKILL of worker run", .serialized)
struct LongProcessCrashTests {
    @Test("SIGKILL while a parent starts 20 children and while they run: each child starts once, each effect once",
          .timeLimit(.minutes(3)))
    func parentStartsChildren() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        let database = try DatabaseQueue(path: scratch.databasePath)
        func count(_ sql: String) async throws -> Int {
            try await database.read { db in try Int.fetchOne(db, sql: sql) ?? 0 }
        }
        var daemon = try await Daemon.started(1, database: db, logPath: scratch.logPath)
        let start = try await WorkerBinary.run(
            ["start", "diagnostics.parent", "--id", "dd", "--input",
             #"{"children":20,"steps":2,"stepDelayMilliseconds":150,"stepTimeoutSeconds":1}"#], database: db)
        #expect(start.status == 0, "\(start.stderr)")
        // First kill: as soon as the parent's first task is leased (before or as it commits the starts).
        _ = try await eventually("the parent's task leased", interval: .milliseconds(5)) {
            try await count("SELECT COUNT(*) FROM workflow_runs WHERE workflow_id = 'dd' AND lease_owner IS NOT NULL")
                + count("SELECT COUNT(*) FROM workflow_runs WHERE parent_workflow_id = 'dd'") > 0 ? true : nil
        }
        await daemon.kill()
        daemon = try await Daemon.started(2, database: db, logPath: scratch.logPath)
        // Second kill: while the children's steps run.
        _ = try await eventually("children's steps in flight", interval: .milliseconds(10)) {
            try await count("SELECT COUNT(*) FROM activity_tasks WHERE lease_owner = 'w2'") > 0 ? true : nil
        }
        await daemon.kill()
        daemon = try await Daemon.started(3, database: db, logPath: scratch.logPath)

        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let parent = try #require(try await store.findRun(workflowID: "dd"))
        let closed = try await WorkflowClient(store: store).waitForClose(runID: parent.runID, timeout: .seconds(120))
        #expect(closed.status == .completed, "\(closed.failure?.description ?? "")")
        #expect(try await daemon.terminate() == 0)

        let children = try await store.listRuns(RunQuery(parentWorkflowID: "dd", limit: 1000))
        #expect(children.count == 20, "one run per child")
        #expect(Set(children.map(\.workflowID)) == Set((2...21).map { "dd/\(parent.runID)/\($0)" }))
        #expect(children.allSatisfy { $0.status == .completed })
        let history = try await store.history(runID: parent.runID).map(\.kind.name)
        #expect(history.filter { $0 == "childWorkflowRequested" }.count == 20)
        #expect(history.filter { $0 == "childWorkflowStarted" }.count == 20)
        let effects = try await database.read { db in
            try String.fetchAll(db, sql: "SELECT idempotency_key FROM diagnostic_effects")
        }
        #expect(effects.count == 40)
        #expect(Set(effects) == Set(children.flatMap { child in (1...2).map { "\(child.workflowID)/\(child.runID)/\($0)" } }))
    }

    @Test("SIGKILL while a counter takes 2,000 signals from concurrent CLI processes and continues as new every 100",
          .timeLimit(.minutes(5)))
    func counterUnderSignals() async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = scratch.databaseURL
        #expect(try await WorkerBinary.run(["migrate"], database: db).status == 0)
        var daemon = try await Daemon.started(1, database: db, logPath: scratch.logPath)
        let start = try await WorkerBinary.run(
            ["start", "diagnostics.counter", "--id", "counter", "--input", #"{"continueEvery":100}"#], database: db)
        #expect(start.status == 0, "\(start.stderr)")

        let signals = 2_000
        let batches = 4
        var failures: [String] = []
        for batch in 0..<batches {
            // Eight CLI processes at a time; every 50th signal is sent twice (a client's retry).
            let numbers = Array((batch * signals / batches + 1)...((batch + 1) * signals / batches))
            let sends = numbers + numbers.filter { $0 % 50 == 0 }
            failures += try await withThrowingTaskGroup(of: String?.self) { group in
                var next = sends.makeIterator()
                func add() -> Bool {
                    guard let number = next.next() else { return false }
                    group.addTask {
                        let output = try await WorkerBinary.run(
                            ["signal", "counter", "add", "--payload", "\(number)", "--request-id", "add-\(number)"],
                            database: db)
                        return output.status == 0 ? nil : "add-\(number): \(output.stderr)"
                    }
                    return true
                }
                for _ in 0..<8 { _ = add() }
                var failed: [String] = []
                while let result = try await group.next() {
                    if let result { failed.append(result) }
                    _ = add()
                }
                return failed
            }
            if batch < batches - 1 {
                await daemon.kill()
                daemon = try await Daemon.started(batch + 2, database: db, logPath: scratch.logPath)
            }
        }
        #expect(failures.isEmpty, "\(failures.prefix(3))")
        #expect(try await WorkerBinary.run(["signal", "counter", "stop", "--request-id", "stop"], database: db).status == 0)

        let store = try SQLWorkflowStore(sqlitePath: scratch.databasePath)
        let first = try #require(try await store.listRuns(RunQuery(workflowID: "counter", limit: 1000)).last)
        let final = try await WorkflowClient(store: store).result(
            of: WorkflowHandle(workflowID: "counter", runID: first.runID, created: true), as: DiagnosticCounter.self,
            timeout: .seconds(120))
        #expect(try await daemon.terminate() == 0)
        #expect(final.signals == signals, "each request id counted once")
        #expect(final.total == signals * (signals + 1) / 2)
        let runs = try await store.listRuns(RunQuery(workflowID: "counter", limit: 1000))
        #expect(runs.count >= signals / 100)
        #expect(runs.dropFirst().allSatisfy { $0.status == .continuedAsNew })
        #expect(runs.map(\.historyLength).max() ?? 0 <= 300, "\(runs.map(\.historyLength))")
        let list = try await WorkerBinary.run(["list"], database: db)
        let rows = list.stdout.split(separator: "\n").filter { $0.hasPrefix("counter ") }
        #expect(rows.count == 1 && rows[0].contains("completed"), "one row per workflow id: \(list.stdout)")
    }
}
