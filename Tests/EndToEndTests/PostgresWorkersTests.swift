import Foundation
import KeelCLI
import KeelPostgres
import KeelTestSupport
import Logging
import PostgresNIO
import Testing
import WorkflowRuntime
import Workflows

/// Waits for every run to close, riding out moments when the database is unreachable.
/// - Throws: ``KeelError`` `.timeout` (or the last database error) once `deadline` has passed.
func waitForAll(_ handles: [WorkflowHandle], client: WorkflowClient, deadline: Duration) async throws -> [WorkflowRun] {
    let end = ContinuousClock.now + deadline
    var closed: [WorkflowRun] = []
    for handle in handles {
        while true {
            do {
                closed.append(try await client.waitForClose(runID: handle.runID, timeout: end - ContinuousClock.now))
                break
            } catch let error as KeelError where error.code == .databaseUnreachable || error.code == .storage {
                guard ContinuousClock.now < end else { throw error }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }
    return closed
}

/// Checks what a stale commit would break: contiguous event ids, one schedule and one outcome for
/// each of `steps` steps, and a history the code replays without a mismatch.
func checkHistoriesConsistent(_ handles: [WorkflowHandle], store: any WorkflowStore, steps: Int = 3) async throws {
    var registry = WorkflowRegistry()
    registry.registerDiagnosticWorkflows()
    let replayer = WorkflowReplayer(registry: registry)
    for handle in handles {
        let history = try await store.history(runID: handle.runID)
        #expect(history.map(\.id) == Array(1...history.count))
        let scheduled = history.compactMap { event -> Int? in
            if case .activityScheduled(let seq, _, _, _, _) = event.kind { return seq }
            return nil
        }
        let completed = history.compactMap { event -> Int? in
            if case .activityCompleted(let seq, _, _) = event.kind { return seq }
            return nil
        }
        #expect(scheduled == Array(1...steps) && completed == Array(1...steps), "\(handle.workflowID): \(history.map(\.kind.name))")
        try replayer.replay(history, runID: handle.runID)
    }
}

func effectKeys(_ store: any WorkflowStore) async throws -> [String] {
    let postgres = try #require((store as? SQLWorkflowStore)?.postgresDriver)
    let rows = try await postgres.client.query("SELECT idempotency_key FROM diagnostic_effects", logger: Logger(label: "test"))
    var keys: [String] = []
    for try await key in rows.decode(String.self) { keys.append(key) }
    return keys
}

@Suite("PostgreSQL: many workers, crashes, CLI", .serialized)
struct PostgresWorkersTests {
    @Test("three workers, 500 runs of 3 steps, one worker SIGKILLed and restarted twice: every run completes, each effect once",
          .timeLimit(.minutes(4)))
    func threeWorkersWithCrashes() async throws {
        let url = try await PostgresTestServer.freshDatabaseURL()
        let scratch = try Scratch()
        defer { scratch.remove() }
        #expect(try await WorkerBinary.run(["migrate"], database: url).status == 0)
        let logs = (0..<3).map { scratch.directory.appendingPathComponent("worker-\($0).log").path }
        var workers: [Daemon] = []
        for log in logs { workers.append(try await Daemon(database: url, logPath: log)) }
        for log in logs { try await Daemon.waitForStart(logPath: log, count: 1) }

        try await StoreLocation(url: url).withStore { store in
            let client = WorkflowClient(store: store)
            var handles: [WorkflowHandle] = []
            for index in 0..<500 {
                handles.append(try await client.start(
                    DiagnosticSequence.self, id: "many-\(index)",
                    input: .init(steps: 3, stepDelayMilliseconds: 20, stepTimeoutSeconds: 1)))
            }
            for restart in 1...2 {
                try await Task.sleep(for: .milliseconds(700))
                await workers[0].kill()
                workers[0] = try await Daemon(database: url, logPath: logs[0])
                try await Daemon.waitForStart(logPath: logs[0], count: restart + 1)
            }
            let runs = try await waitForAll(handles, client: client, deadline: .seconds(150))
            #expect(runs.allSatisfy { $0.status == .completed })
            for worker in workers { #expect(try await worker.terminate() == 0) }

            let expected = Set(handles.flatMap { handle in (1...3).map { "\(handle.workflowID)/\(handle.runID)/\($0)" } })
            let keys = try await effectKeys(store)
            #expect(keys.count == expected.count)
            #expect(Set(keys) == expected)
            try await checkHistoriesConsistent(handles, store: store)
        }
    }

    @Test("the CLI round trip on PostgreSQL: start --wait, signal, show; unreachable server is reported", .timeLimit(.minutes(1)))
    func cliOnPostgres() async throws {
        let url = try await PostgresTestServer.freshDatabaseURL()
        let scratch = try Scratch()
        defer { scratch.remove() }
        #expect(try await WorkerBinary.run(["migrate"], database: url).status == 0)
        let worker = try await Daemon(database: url, logPath: scratch.logPath)
        try await Daemon.waitForStart(logPath: scratch.logPath, count: 1)
        let started = try await WorkerBinary.run(["start", "diagnostics.sequence", "--id", "pg-seq", "--input", "{\"steps\":2}", "--wait", "--timeout", "20"],
                                           database: url)
        #expect(started.status == 0, "\(started.stderr)")
        #expect(started.stdout.contains("completed"))
        #expect(try await WorkerBinary.run(["start", "diagnostics.wait-signal", "--id", "pg-wait"], database: url).status == 0)
        #expect(try await WorkerBinary.run(["signal", "pg-wait", "go", "--payload", "{\"ok\":true}"], database: url).status == 0)
        var shown = ""
        for _ in 0..<100 {
            shown = try await WorkerBinary.run(["show", "pg-wait"], database: url).stdout
            if shown.contains("completed") { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(shown.contains("{\"ok\":true}"))
        #expect(try await worker.terminate() == 0)

        let unreachable = try await WorkerBinary.run(["list"], database: "postgres://keel:keel@127.0.0.1:1/keel")
        #expect(unreachable.status == 5)
        #expect(unreachable.stderr.contains("database unreachable"))
    }
}
