import Activities
import Foundation
import KeelCLI
import KeelTestSupport
import Testing
import WorkflowRuntime
import Workflows

/// What a run's history says about its compensation.
private struct CompensationView {
    var compensationStarted: HistoryEvent?
    var closing: HistoryEvent?
    /// The undo activities, in the order they were scheduled: (seq, input, idempotency key).
    var undos: [(seq: Int, input: UndoDiagnosticEffect.Input, key: String)]
    /// Attempt on which each undo completed, by seq.
    var completedAttempt: [Int: Int]
    var kinds: [String]

    init(_ history: [HistoryEvent]) throws {
        compensationStarted = history.first { $0.kind.name == "compensationStarted" }
        closing = history.first { $0.kind.isClosing }
        undos = []
        completedAttempt = [:]
        kinds = history.map(\.kind.name)
        for event in history {
            switch event.kind {
            case .activityScheduled(let seq, let activity, let input, let key, _) where activity == UndoDiagnosticEffect.name:
                undos.append((seq, try input.decode(as: UndoDiagnosticEffect.Input.self), key))
            case .activityCompleted(let seq, _, let attempt):
                completedAttempt[seq] = attempt
            default:
                break
            }
        }
    }

    var isCompensating: Bool { compensationStarted != nil && closing == nil }
}

@Suite("Compensation survives SIGKILL of the worker", .serialized)
struct CompensationCrashTests {
    static let runs = 20
    static let steps = 4
    // Each undo works 700 ms, so a run compensates for about 3 s: a kill lands inside that window even on a loaded machine.
    static let input = DiagnosticSaga.Input(steps: steps, stepDelayMilliseconds: 50, undoDelayMilliseconds: 700, attemptTimeoutSeconds: 2)

    /// Waits until some run is compensating with an undo attempt leased to the live worker `owner`
    /// (so a kill now interrupts it — a lease still held by a killed worker does not count), or
    /// every run has closed. - Returns: the workflow ids caught compensating (empty if none).
    /// One query per poll (undo activities exist only while a run compensates): on a loaded
    /// machine, reading every run's history per poll can outlast the compensations.
    private static func waitForCompensationInFlight(_ handles: [WorkflowHandle], owner: String, store: any WorkflowStore,
                                                    scratch: Scratch) async throws -> [String] {
        try await eventually("a run compensating with an undo attempt leased to \(owner)", timeout: .seconds(60), interval: .milliseconds(10)) {
            let caught = try await DiagnosticTables.workflowsWithLeasedActivity(UndoDiagnosticEffect.name, owner: owner, store: store,
                                                                                scratch: scratch)
            if !caught.isEmpty { return caught }
            for handle in handles where try await store.run(runID: handle.runID)?.status.isOpen == true { return nil }
            return []
        }
    }

    @Test("SIGKILL of the worker twice while runs compensate: every run ends compensated, each undo recorded once, in reverse order",
          .timeLimit(.minutes(5)), arguments: TestBackend.allCases)
    func killDuringCompensation(backend: TestBackend) async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = try await backend.databaseURL(in: scratch)
        let migrated = try await WorkerBinary.run(["migrate"], database: db)
        #expect(migrated.status == 0, "migrate: \(migrated.stderr)")

        try await StoreLocation(url: db).withStore { store in
            let client = WorkflowClient(store: store)
            func daemon(_ number: Int) async throws -> Daemon {
                try await Daemon(database: db, logPath: scratch.logPath, extraArguments: ["--identity", "crash-worker-\(number)"])
            }
            var worker = try await daemon(1)
            try await Daemon.waitForStart(logPath: scratch.logPath, count: 1)
            var handles: [WorkflowHandle] = []
            for index in 0..<Self.runs {
                handles.append(try await client.start(DiagnosticSaga.self, id: "saga-crash-\(index)", input: Self.input))
            }

            var kills: [(at: Date, compensating: [String])] = []
            for restart in 1...2 {
                let compensating = try await Self.waitForCompensationInFlight(handles, owner: "crash-worker-\(restart)", store: store,
                                                                             scratch: scratch)
                kills.append((Date(), compensating))
                await worker.kill()
                worker = try await daemon(restart + 1)
                try await Daemon.waitForStart(logPath: scratch.logPath, count: restart + 1)
            }

            let end = ContinuousClock.now + .seconds(120)
            for handle in handles {
                let run = try await client.waitForClose(runID: handle.runID, timeout: max(end - ContinuousClock.now, .seconds(1)))
                #expect(run.status == .compensated, "\(handle.workflowID): \(run.status) \(run.failure?.description ?? "")")
            }
            #expect(try await worker.terminate() == 0, "the last worker drains and exits 0")

            // Each compensation's effect exactly once: one row per (run, step), every one undone.
            let rows = try await DiagnosticTables.compensations(store: store, scratch: scratch)
            #expect(rows.count == Self.runs * Self.steps, "one compensation row per run and step, got \(rows.count)")
            #expect(Set(rows.map(\.idempotencyKey)).count == rows.count)
            let rowsByKey = Dictionary(rows.map { ($0.idempotencyKey, $0) }, uniquingKeysWith: { first, _ in first })
            let effects = try await DiagnosticTables.effects(store: store, scratch: scratch)
            #expect(effects.count == Self.runs * Self.steps, "one effect row per run and step, got \(effects.count)")

            var retriedUndos: [String] = []
            var spanningRestart: [String] = []
            for handle in handles {
                let prefix = "\(handle.workflowID)/\(handle.runID)"
                let expectedKeys = (0..<Self.steps).map { "\(prefix)/compensation/\($0)" }
                let runRows = rows.filter { $0.workflowID == handle.workflowID }
                #expect(Set(runRows.map(\.idempotencyKey)) == Set(expectedKeys), "\(handle.workflowID): \(runRows)")
                for (index, key) in expectedKeys.enumerated() {
                    let row = rowsByKey[key]
                    #expect(row?.undone == true, "\(key) undid an effect that existed: \(row?.description ?? "missing")")
                    #expect(row?.step == index + 1 && row?.effectKey == "\(prefix)/step-\(index + 1)", "\(row?.description ?? key)")
                }

                let history = try await store.history(runID: handle.runID)
                let view = try CompensationView(history)
                #expect(view.kinds.filter { $0 == "compensationStarted" }.count == 1, "\(handle.workflowID): \(view.kinds)")
                #expect(view.kinds.last == "workflowCompensated", "\(handle.workflowID): \(view.kinds)")
                #expect(!view.kinds.contains("compensationFailed"), "\(handle.workflowID): \(view.kinds)")
                // Reverse order, each undo scheduled once, with its registration's key.
                #expect(view.undos.map { $0.input.step } == Array((1...Self.steps).reversed()),
                        "\(handle.workflowID) undid steps in the order \(view.undos.map { $0.input.step })")
                #expect(view.undos.map { $0.key } == Array(expectedKeys.reversed()), "\(handle.workflowID): \(view.undos.map { $0.key })")
                let undoSeqs = view.undos.map { $0.seq }
                #expect(undoSeqs == undoSeqs.sorted() && undoSeqs.allSatisfy { view.completedAttempt[$0] != nil },
                        "\(handle.workflowID): every undo completed: \(view.kinds)")
                for undo in view.undos where (view.completedAttempt[undo.seq] ?? 1) > 1 {
                    retriedUndos.append("\(undo.key) attempt \(view.completedAttempt[undo.seq]!)")
                }
                if let started = view.compensationStarted?.timestamp, let closed = view.closing?.timestamp,
                   kills.contains(where: { started < $0.at && $0.at < closed }) {
                    spanningRestart.append(handle.workflowID)
                }
            }

            let log = try String(contentsOfFile: scratch.logPath, encoding: .utf8)
            #expect(log.components(separatedBy: "worker started").count - 1 == 3, "three worker start-ups")
            // The kills really landed mid-compensation: an undo attempt was lost and retried, and
            // some run's compensation spans a restart.
            for (number, kill) in kills.enumerated() {
                #expect(!kill.compensating.isEmpty, "kill \(number + 1) landed while an undo attempt was in flight")
            }
            #expect(!retriedUndos.isEmpty, "some undo completed on a later attempt after a SIGKILL (kills caught \(kills.map(\.compensating)))")
            #expect(!spanningRestart.isEmpty, "some run's compensation spans a restart")
            let repeated = rows.filter { $0.attempts > 1 }
            print("compensation crash test (\(backend)): kills caught \(kills.map(\.compensating.count)) run(s) compensating; "
                  + "\(retriedUndos.count) undo(s) completed on a later attempt; \(spanningRestart.count) compensation(s) span a restart; "
                  + "\(repeated.count) undo key(s) saw a repeated attempt")
        }
    }
}
