import Activities
import Foundation
import KeelProcess
import WorkflowRuntime
import Workflows

/// The chaos harness: diagnostic runs across several `worker run` processes while a random
/// worker is SIGKILLed and restarted every few seconds, one is SIGSTOPped past its lease and
/// resumed, the database's connections are cut, and (given a command for it) the server is
/// restarted once. At the end every run must have reached its expected end, each step's
/// idempotency key must be in `diagnostic_effects` exactly once, and every history must replay.
struct ChaosHarness {
    struct Plan {
        var databaseURL: String
        var duration: Duration
        var workers: Int
        var runs: Int
        var killEvery: Duration
        /// A shell command that restarts the database server (run once, three quarters through).
        var restartCommand: String?
        var logDirectory: String
    }

    /// What happened, and what the checks found.
    struct Summary: CustomStringConvertible {
        var seconds = 0.0
        var kills = 0
        var stops = 0
        var connectionCuts = 0
        var serverRestarts = 0
        var runs = 0
        var completed = 0
        var compensated = 0
        var lost = 0
        var duplicated = 0
        var stuck = 0
        var replayFailures = 0
        var problems: [String] = []

        var ok: Bool { lost == 0 && duplicated == 0 && stuck == 0 && replayFailures == 0 && problems.isEmpty }

        var description: String {
            "chaos: \(Int(seconds)) s, kills \(kills), restarts \(kills), stops \(stops), connection cuts "
                + "\(connectionCuts), server restarts \(serverRestarts), runs \(runs) (completed \(completed), "
                + "compensated \(compensated)), lost \(lost), duplicated \(duplicated), stuck \(stuck), "
                + "replay failures \(replayFailures) — \(ok ? "OK" : "FAILED")"
        }
    }

    /// One started run and how it must end.
    private struct Expected {
        var handle: WorkflowHandle
        var kind: Kind
        enum Kind { case sequence(steps: Int), saga(steps: Int), approve, reject }
    }

    let plan: Plan
    let client: WorkflowClient
    let store: any WorkflowStore
    let registry: WorkflowRegistry
    static let steps = 4

    func run() async throws -> Summary {
        var summary = Summary()
        let begin = ContinuousClock.now
        let pool = WorkerPool(plan: plan)
        try await pool.startAll()
        let deciding = Task { await decideApprovals(until: begin + plan.duration + .seconds(120)) }
        defer { deciding.cancel() }

        var expected: [Expected] = []
        var nextKill = begin + plan.killEvery
        var stopped = false, cut = false, restarted = false
        let waves = max(1, Int(plan.duration.seconds))
        for wave in 0..<waves {
            let share = plan.runs * (wave + 1) / waves - plan.runs * wave / waves
            for _ in 0..<share {
                let index = expected.count
                expected.append(try await retrying { try await startRun(index: index) })
            }
            try await Task.sleep(until: begin + .seconds(wave + 1))
            let elapsed = ContinuousClock.now - begin
            if ContinuousClock.now >= nextKill {
                try await pool.killRandom()
                summary.kills += 1
                nextKill = ContinuousClock.now + plan.killEvery
            }
            if !stopped, elapsed >= plan.duration * 0.25 {
                stopped = true
                try await pool.pauseRandom(for: .seconds(5))  // past the 2 s leases
                summary.stops += 1
            }
            if !cut, elapsed >= plan.duration * 0.5 {
                cut = true
                try await retrying { try await cutConnections() }
                summary.connectionCuts += 1
            }
            if !restarted, elapsed >= plan.duration * 0.75, let command = plan.restartCommand {
                restarted = true
                let output = try await ChildProcess.run("/bin/sh", arguments: ["-c", command])
                guard output.status == 0 else {
                    throw KeelError(.invalidArgument, "--restart-command failed: \(output.standardError)")
                }
                summary.serverRestarts += 1
            }
        }
        summary.runs = expected.count
        try await verify(expected, into: &summary)
        try await pool.stopAll()
        summary.seconds = (ContinuousClock.now - begin).seconds
        return summary
    }

    private func startRun(index: Int) async throws -> Expected {
        let id = "chaos-\(index)-\(UInt16.random(in: 0...UInt16.max))"
        switch index % 10 {
        case 0:
            let handle = try await client.start(
                DiagnosticSaga.self, id: id,
                input: .init(steps: 2, stepDelayMilliseconds: 100, undoDelayMilliseconds: 100, attemptTimeoutSeconds: 2)
            )
            return Expected(handle: handle, kind: .saga(steps: 2))
        case 1, 2:
            let handle = try await client.start(
                DiagnosticApproval.self, id: id,
                input: .init(summary: "chaos \(index)", payload: .number(Double(index)), deadlineSeconds: 3600))
            return Expected(handle: handle, kind: index % 10 == 1 ? .approve : .reject)
        default:
            // Some sleep between steps: timers fired by the worker that keeps the run, or by the
            // others' timer passes when it was killed.
            let handle = try await client.start(
                DiagnosticSequence.self, id: id,
                input: .init(
                    steps: Self.steps, stepDelayMilliseconds: 150, stepTimeoutSeconds: 2,
                    pauseMilliseconds: index % 10 == 3 ? 300 : nil))
            return Expected(handle: handle, kind: .sequence(steps: Self.steps))
        }
    }

    /// Runs `body`, again while the database is unreachable (a cut connection, the server
    /// restarting), for up to a minute: what any client of a database under chaos does. Starts
    /// are idempotent by workflow id, so a start whose answer was lost is safe to repeat.
    private func retrying<T>(_ body: () async throws -> T) async throws -> T {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            do { return try await body() } catch let error as KeelError
                where error.code == .databaseUnreachable && ContinuousClock.now < deadline
            {
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    /// Decides each pending approval as its run's index says (`chaos-1-…` approved, `chaos-2-…` rejected).
    private func decideApprovals(until deadline: ContinuousClock.Instant) async {
        while ContinuousClock.now < deadline, !Task.isCancelled {
            if let pending = try? await client.approvals(ApprovalQuery(pendingOnly: true)) {
                for approval in pending {
                    let index = Int(approval.workflowID.split(separator: "-")[1]) ?? 0
                    if index % 10 == 1 {
                        _ = try? await client.approve(approval.id, by: "chaos", origin: "chaos")
                    } else {
                        _ = try? await client.reject(approval.id, by: "chaos", reason: "chaos says no", origin: "chaos")
                    }
                }
            }
            try? await Task.sleep(for: .milliseconds(200))
        }
    }

    /// Terminates every other connection to the database (`pg_terminate_backend`).
    private func cutConnections() async throws {
        guard let sql = store as? SQLWorkflowStore else { return }
        try await sql.driver.read { connection in
            _ = try await connection.query(
                """
                SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                WHERE datname = current_database() AND pid <> pg_backend_pid()
                """)
        }
    }

    private func verify(_ expected: [Expected], into summary: inout Summary) async throws {
        guard let sql = store as? SQLWorkflowStore else { return }
        for run in expected {
            let closed: WorkflowRun
            do {
                closed = try await retrying {
                    try await client.waitForClose(runID: run.handle.runID, timeout: .seconds(120))
                }
            } catch {
                summary.stuck += 1
                summary.problems.append("\(run.handle.workflowID) did not close")
                continue
            }
            let want: RunStatus =
                switch run.kind {
                case .sequence, .approve: .completed
                case .saga, .reject: .compensated
                }
            if closed.status == want {
                if want == .completed { summary.completed += 1 } else { summary.compensated += 1 }
            } else {
                summary.lost += 1
                summary.problems.append(
                    "\(run.handle.workflowID) ended \(closed.status.rawValue), not \(want.rawValue)")
            }
            let history = try await retrying { try await store.history(runID: run.handle.runID) }
            do { try WorkflowReplayer(registry: registry).replay(history, runID: run.handle.runID) } catch {
                summary.replayFailures += 1
                summary.problems.append("\(run.handle.workflowID) does not replay: \(error)")
            }
            let workflowID = run.handle.workflowID
            let effects = try await retrying {
                try await sql.driver.read { connection in
                    try await connection.query(
                        "SELECT step, attempts FROM diagnostic_effects WHERE workflow_id = ? ORDER BY step", workflowID
                    ).map { (try $0.get(0, as: Int.self), try $0.get(1, as: Int.self)) }
                }
            }
            let steps: [Int] =
                switch run.kind {
                case .sequence(let steps): Array(1...steps)
                case .saga(let steps): Array(1...steps)
                case .approve, .reject: [1]
                }
            let recorded = effects.map(\.0)
            if recorded.count > steps.count || Set(recorded).count < recorded.count {
                summary.duplicated += 1
                summary.problems.append("\(workflowID) recorded steps \(recorded), expected \(steps) once each")
            } else if recorded != steps {
                summary.lost += 1
                summary.problems.append("\(workflowID) recorded steps \(recorded), expected \(steps)")
            }
        }
    }
}

/// The `worker run` processes of a chaos run.
private actor WorkerPool {
    let plan: ChaosHarness.Plan
    private var workers: [ChildProcess?]
    private var started = 0

    init(plan: ChaosHarness.Plan) {
        self.plan = plan
        workers = Array(repeating: nil, count: plan.workers)
    }

    func startAll() async throws {
        for index in workers.indices { try await start(index) }
    }

    private func start(_ index: Int) async throws {
        started += 1
        workers[index] = try await ChildProcess.start(
            URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path,
            arguments: [
                "run", "--database", plan.databaseURL, "--poll-interval-ms", "50", "--workflow-task-timeout", "2",
                "--activity-timeout", "2", "--identity", "chaos-w\(index)-\(started)",
            ],
            logPath: "\(plan.logDirectory)/worker-\(index).log")
    }

    func killRandom() async throws {
        let index = Int.random(in: workers.indices)
        if let worker = workers[index] { await worker.kill() }
        try await start(index)
    }

    func pauseRandom(for duration: Duration) async throws {
        guard let worker = workers[Int.random(in: workers.indices)] else { return }
        worker.send(SIGSTOP)
        try await Task.sleep(for: duration)
        worker.send(SIGCONT)
    }

    func stopAll() async throws {
        for worker in workers.compactMap({ $0 }) { _ = try await worker.stop(within: .seconds(60)) }
        workers = Array(repeating: nil, count: workers.count)
    }
}
