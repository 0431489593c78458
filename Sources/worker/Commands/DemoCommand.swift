import Activities
import ArgumentParser
import Foundation
import GRDB
import KeelCLI
import KeelSQLite
import WorkflowRuntime
import Workflows

/// `worker demo`: a workflow surviving a simulated crash of its worker, end to end.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract:
            "Run diagnostics.sequence in a worker process, SIGKILL the worker mid-run, restart it, and show the "
            + "run finish with every effect recorded once; then approve one diagnostics.approval run and "
            + "reject another, which compensates; then a parent with three children and a counter that "
            + "continues as new; then the four business workflows, their approvals decided by the demo."
    )

    @Option(help: "Database URL (default: a new SQLite file in a temporary directory).")
    var database: String?

    @Option(help: "Steps of the sequence.")
    var steps = 6

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "keel-demo-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = database ?? "sqlite:\(directory.appendingPathComponent("keel.sqlite").path)"
        let location = try StoreLocation(url: url)
        guard case .sqlite(let path, _) = location else { throw ValidationError("the demo runs on SQLite") }
        let logPath = directory.appendingPathComponent("worker.log").path
        let lease = 2.0
        let store = try SQLWorkflowStore(sqlitePath: path)
        try await store.migrate()
        let client = WorkflowClient(
            store: store, registry: try WorkerRegistry.make(for: WorkflowDatabase(store: store)))
        print("Keel demo — database \(url)\n            worker log \(logPath)\n")

        var worker = try await WorkerProcess(databaseURL: url, logPath: logPath, leaseSeconds: lease)
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
        await worker.kill()
        print(
            "3. step \(crashAfter) of \(steps) done — killed the worker with SIGKILL in the middle of step "
                + "\(crashAfter + 1)"
        )

        worker = try await WorkerProcess(databaseURL: url, logPath: logPath, leaseSeconds: lease)
        print(
            "4. restarted `worker run` (pid \(worker.pid)); it takes over the lost step when its \(Int(lease)) "
                + "s lease expires"
        )
        let run = try await client.waitForClose(runID: handle.runID, timeout: .seconds(45))
        print(
            "5. '\(workflowID)' \(run.status.rawValue) after "
                + "\(String(format: "%.1f", Date().timeIntervalSince(started))) s: "
                + "\(run.result?.description ?? run.failure?.description ?? "")"
        )
        let approvalsOK = try await demonstrateApprovals(client: client, store: store, path: path)
        let longProcessesOK = try await demonstrateLongProcesses(client: client, store: store)
        let businessOK = try await BusinessDemo(
            client: client, ledger: try OutboundLedger(database: WorkflowDatabase(store: store))
        ).run()
        let status = try await worker.stop()
        print("13. stopped the worker with SIGTERM (exit status \(status))\n")

        let history = try await store.history(runID: handle.runID)
        print("Activity completions (attempt > 1 = retried after the crash, with the same idempotency key):")
        for event in history {
            if case .activityCompleted(let seq, _, let attempt) = event.kind {
                print("   step #\(seq): attempt \(attempt)")
            }
        }
        let effects = try await DatabaseQueue(path: path).read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT idempotency_key, step, attempts FROM diagnostic_effects WHERE workflow_id = ? ORDER "
                    + "BY step",
                arguments: [workflowID]
            ).map { ($0["idempotency_key"] as String, $0["step"] as Int, $0["attempts"] as Int) }
        }
        print("\nEffects table (sqlite3 \(path) 'SELECT * FROM diagnostic_effects'):")
        for (key, step, attempts) in effects { print("   \(key)  step \(step)  attempts \(attempts)") }
        let ok = run.status == .completed && effects.count == steps && Set(effects.map(\.0)).count == steps
        print(
            ok
                ? "\nOK: the run survived the crash; each of its \(steps) effects is recorded exactly once."
                : "\nFAILED: expected \(steps) effects recorded once each.")
        print(
            approvalsOK
                ? "OK: the approved run completed; the rejected one undid its effect and ended compensated."
                : "FAILED: the approval runs did not end as expected.")
        print(
            longProcessesOK
                ? "OK: the parent got its three children's results; the counter's total is exact across its runs."
                : "FAILED: the parent or the counter did not end as expected.")
        print(
            businessOK
                ? "OK: partner approval activated, DD went to close preparation, the term sheet was signed, the "
                    + "cadence exited on the reply."
                : "FAILED: a business workflow did not end as expected.")
        if !ok || !approvalsOK || !longProcessesOK || !businessOK { throw ExitCode.failure }
    }

    /// A `diagnostics.parent` with three children, and a `diagnostics.counter` fed 120 signals
    /// that continues as new every 50. - Returns: whether both ended as expected.
    private func demonstrateLongProcesses(client: WorkflowClient, store: any WorkflowStore) async throws -> Bool {
        let suffix = UInt16.random(in: 1000...9999)
        let parent = try await client.start(
            DiagnosticParent.self, id: "demo-parent-\(suffix)", input: .init(children: 3, steps: 2))
        let outputs = try await client.result(of: parent, as: DiagnosticParent.self, timeout: .seconds(30))
        let children = try await client.list(RunQuery(parentWorkflowID: parent.workflowID))
        print(
            "9. diagnostics.parent '\(parent.workflowID)' started \(children.count) children in one commit and got "
                + "\(outputs.count) results (worker list --parent \(parent.workflowID))")
        let counterID = "demo-counter-\(suffix)"
        let counter = try await client.start(DiagnosticCounter.self, id: counterID, input: .init(continueEvery: 50))
        for amount in 1...120 {
            try await client.signal(workflowID: counterID, name: "add", value: amount, requestID: "add-\(amount)")
        }
        try await client.signal(workflowID: counterID, name: "stop")
        let state = try await client.result(of: counter, as: DiagnosticCounter.self, timeout: .seconds(30))
        let runs = try await client.list(RunQuery(workflowID: counterID))
        print(
            "10. diagnostics.counter '\(counterID)' took 120 signals in \(runs.count) runs (continue-as-new every 50): "
                + "total \(state.total), longest history \(runs.map(\.historyLength).max() ?? 0) events")
        return outputs.count == 3 && children.count == 3 && state.total == 7260 && state.signals == 120
            && runs.count == 3
    }

    /// Two `diagnostics.approval` runs: one approved (after a refused decision on the wrong payload
    /// hash), one rejected, which compensates. - Returns: whether both ended as expected.
    private func demonstrateApprovals(client: WorkflowClient, store: any WorkflowStore, path: String) async throws
        -> Bool
    {
        let suffix = UInt16.random(in: 1000...9999)
        let input = DiagnosticApproval.Input(
            summary: "Partner Acme: net-30 terms", payload: .object(["terms": .string("net 30")]),
            deadlineSeconds: 3600, approvers: ["ada", "role:legal"])
        let approved = try await client.start(DiagnosticApproval.self, id: "demo-approve-\(suffix)", input: input)
        let rejected = try await client.start(DiagnosticApproval.self, id: "demo-reject-\(suffix)", input: input)
        print(
            "6. started diagnostics.approval '\(approved.workflowID)' and '\(rejected.workflowID)'; each "
                + "records an effect, then waits for a person"
        )
        var pending: [ApprovalRecord] = []
        for _ in 0..<500 where pending.count < 2 {
            pending = try await client.approvals(ApprovalQuery(pendingOnly: true)).filter {
                $0.workflowID.hasSuffix("-\(suffix)")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        guard let first = pending.first(where: { $0.runID == approved.runID }),
            let second = pending.first(where: { $0.runID == rejected.runID })
        else { return false }
        for approval in [first, second] {
            print(
                "   pending \(approval.id) of \(approval.workflowID): \"\(approval.request.summary)\" approvers "
                    + "\(approval.request.approvers.joined(separator: ",")) sha256 "
                    + "\(approval.request.payloadHash.prefix(12))…"
            )
        }
        do {
            try await client.approve(first.id, by: "ada", payloadHashPrefix: "000000", origin: "demo")
        } catch let error as KeelError {
            print("7. approve \(first.id) --hash 000000 → refused (exit code 7 in the CLI): \(error.message)")
        }
        try await client.approve(
            first.id, by: "ada", note: "terms ok", payloadHashPrefix: String(first.request.payloadHash.prefix(8)),
            origin: "demo")
        try await client.reject(second.id, by: "grace", role: "legal", reason: "net 30 is too long", origin: "demo")
        let approvedRun = try await client.waitForClose(runID: approved.runID, timeout: .seconds(30))
        let rejectedRun = try await client.waitForClose(runID: rejected.runID, timeout: .seconds(30))
        print(
            "8. approved by ada → '\(approved.workflowID)' \(approvedRun.status.rawValue); rejected by grace as "
                + "legal → '\(rejected.workflowID)' \(rejectedRun.status.rawValue)"
        )
        let undone = try await DatabaseQueue(path: path).read { db in
            try Bool.fetchOne(
                db, sql: "SELECT undone FROM diagnostic_compensations WHERE workflow_id = ?",
                arguments: [rejected.workflowID])
        }
        print(
            "   its effect was undone by diagnostics.undo-effect: diagnostic_compensations.undone = "
                + "\(undone.map { $0 ? "1" : "0" } ?? "(no row)")"
        )
        return approvedRun.status == .completed && rejectedRun.status == .compensated && undone == true
    }

    private func completedSteps(_ store: any WorkflowStore, _ runID: String) async throws -> Int {
        try await store.history(runID: runID).filter { $0.kind.name == "activityCompleted" }.count
    }
}
