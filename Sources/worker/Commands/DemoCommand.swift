import ArgumentParser
import Foundation
import GRDB
import KeelCLI
import WorkflowRuntime
import Workflows

/// `worker demo`: a workflow surviving a simulated crash of its worker, end to end.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run diagnostics.sequence in a worker process, SIGKILL the worker mid-run, restart it, and show the run finish with every effect recorded once.")

    @Option(help: "Database URL (default: a new SQLite file in a temporary directory).")
    var database: String?

    @Option(help: "Steps of the sequence.")
    var steps = 6

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("keel-demo-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = database ?? "sqlite:\(directory.appendingPathComponent("keel.sqlite").path)"
        let location = try StoreLocation(url: url)
        guard case .sqlite(let path, _) = location else { throw ValidationError("the demo runs on SQLite") }
        let logPath = directory.appendingPathComponent("worker.log").path
        let lease = 2.0
        let store = try SQLiteWorkflowStore(path: path)
        try await store.migrate()
        let client = WorkflowClient(store: store, registry: try WorkerRegistry.make(for: store))
        print("Keel demo — database \(url)\n            worker log \(logPath)\n")

        var worker = try WorkerProcess(databaseURL: url, logPath: logPath, leaseSeconds: lease)
        print("1. started `worker run` (pid \(worker.pid))")
        let workflowID = "demo-\(UInt16.random(in: 1000...9999))"
        let started = Date()
        let handle = try await client.start(
            DiagnosticSequence.self, id: workflowID,
            input: .init(steps: steps, stepDelayMilliseconds: 300, stepTimeoutSeconds: lease))
        print("2. started diagnostics.sequence '\(workflowID)' with \(steps) steps of 300 ms each")

        let crashAfter = max(1, steps / 2)
        while try await completedSteps(store, handle.runID) < crashAfter {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(150))  // land inside the next step
        worker.kill()
        print("3. step \(crashAfter) of \(steps) done — killed the worker with SIGKILL in the middle of step \(crashAfter + 1)")

        worker = try WorkerProcess(databaseURL: url, logPath: logPath, leaseSeconds: lease)
        print("4. restarted `worker run` (pid \(worker.pid)); it takes over the lost step when its \(Int(lease)) s lease expires")
        let run = try await client.waitForClose(runID: handle.runID, timeout: .seconds(45))
        let status = worker.stop()
        print("5. '\(workflowID)' \(run.status.rawValue) after \(String(format: "%.1f", Date().timeIntervalSince(started))) s: \(run.result?.description ?? run.failure?.description ?? "")")
        print("6. stopped the worker with SIGTERM (exit status \(status))\n")

        let history = try await store.history(runID: handle.runID)
        print("Activity completions (attempt > 1 = retried after the crash, with the same idempotency key):")
        for event in history {
            if case .activityCompleted(let seq, _, let attempt) = event.kind { print("   step #\(seq): attempt \(attempt)") }
        }
        let effects = try await DatabaseQueue(path: path).read { db in
            try Row.fetchAll(db, sql: "SELECT idempotency_key, step, attempts FROM diagnostic_effects WHERE workflow_id = ? ORDER BY step",
                             arguments: [workflowID]).map { ($0["idempotency_key"] as String, $0["step"] as Int, $0["attempts"] as Int) }
        }
        print("\nEffects table (sqlite3 \(path) 'SELECT * FROM diagnostic_effects'):")
        for (key, step, attempts) in effects { print("   \(key)  step \(step)  attempts \(attempts)") }
        let ok = run.status == .completed && effects.count == steps && Set(effects.map(\.0)).count == steps
        print(ok ? "\nOK: the run survived the crash; each of its \(steps) effects is recorded exactly once."
                 : "\nFAILED: expected \(steps) effects recorded once each.")
        if !ok { throw ExitCode.failure }
    }

    private func completedSteps(_ store: any WorkflowStore, _ runID: String) async throws -> Int {
        try await store.history(runID: runID).filter { $0.kind.name == "activityCompleted" }.count
    }
}
