import Foundation
import KeelCLI
import KeelSQLite
import KeelTestSupport
import Testing
import WorkflowRuntime

/// A store backend under test. Every backend runs the same conformance suite.
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// Runs `body` with a fresh, empty store (a new SQLite file, or a new PostgreSQL database on
    /// the server of `KEEL_TEST_POSTGRES_URL`, which `scripts/test.sh` provides).
    func withEmptyStore(_ body: (any WorkflowStore) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("keel-conformance-\(UUID().uuidString).sqlite").path
            defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
            try await body(try SQLWorkflowStore(sqlitePath: path))
        case .postgres:
            try await PostgresTestServer.withFreshDatabase { url in
                // A small pool: dozens of these tests run at once against one server, whose first
                // answer to a new database can take seconds on a loaded machine (a checkpoint that
                // another test's DROP DATABASE forced).
                try await StoreLocation(url: url + "?pool=4").withStore(reachableWithin: .seconds(30)) {
                    try await body($0)
                }
            }
        }
    }

    /// Runs `body` with a fresh, migrated store.
    func withStore(_ body: (any WorkflowStore) async throws -> Void) async throws {
        try await withEmptyStore { store in
            try await store.migrate()
            try await body(store)
        }
    }
}

private let t0 = Date(timeIntervalSince1970: 1_800_000_000)

private func start(_ store: any WorkflowStore, _ id: String, at time: Date = t0) async throws -> StartWorkflowResult {
    try await store.startWorkflow(StartWorkflowRequest(workflowID: id, workflowType: "conformance", input: Payload(json: "{}"), now: time))
}

private func claimOne(_ store: any WorkflowStore, owner: String = "a", at time: Date = t0, lease: Duration = .seconds(10)) async throws -> WorkflowTask? {
    try await store.claimWorkflowTasks(owner: owner, limit: 10, lease: lease, now: time, cachedTaskVersion: { _ in nil }).first
}

private func completion(_ task: WorkflowTask, _ events: [HistoryEvent.Kind], at time: Date = t0,
                        hasPendingApprovals: Bool = false) -> WorkflowTaskCompletion {
    WorkflowTaskCompletion(runID: task.runID, workflowID: task.workflowID, leaseToken: task.leaseToken, expectedTaskVersion: task.taskVersion,
                           consumedInboxThrough: task.inbox.last?.id, events: events.map { ($0, time) }, eagerLeases: [:],
                           hasPendingApprovals: hasPendingApprovals, now: time)
}

private let scheduleStep = HistoryEvent.Kind.activityScheduled(seq: 1, activity: "step", input: Payload(json: "1"),
                                                               idempotencyKey: "key-1", options: ActivityOptions())

@Suite("Store conformance")
struct StoreConformanceTests {
    @Test("migrations apply from empty, once", arguments: StoreBackend.allCases)
    func migrationsFromEmpty(backend: StoreBackend) async throws {
        try await backend.withEmptyStore { store in
            #expect(try await store.pendingMigrations() == [
                "0001_initial", "0002_approvals_compensation", "0003_signal_request_fingerprint", "0004_workflow_task_claims",
                "0005_task_queues", "0006_activity_cancellation", "0007_continue_as_new", "0008_child_workflows", "0009_stage_search_attributes", "0010_schedules", "0011_schedule_runs", "0012_outbound", "0013_cadences", "0014_inbox_version", "0015_timer_owner",
            ])
            try await store.migrate()
            try await store.migrate()
            #expect(try await store.pendingMigrations().isEmpty)
        }
    }

    @Test("starting an open workflow id returns the existing run; a closed id starts a new one", arguments: StoreBackend.allCases)
    func idempotentStart(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let first = try await start(store, "order")
            let again = try await start(store, "order")
            #expect(first.created && !again.created && first.runID == again.runID)
            _ = try await store.terminate(workflowID: "order", reason: "done", now: t0)
            let next = try await start(store, "order")
            #expect(next.created && next.runID != first.runID)
            #expect(try await store.findRun(workflowID: "order")?.runID == next.runID)
        }
    }

    @Test("an eager start writes its run as the first task leaves it; of an id already open it writes nothing",
          arguments: StoreBackend.allCases)
    func eagerStart(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            func request(runID: String) -> StartWorkflowRequest {
                StartWorkflowRequest(
                    workflowID: "order", runID: runID, workflowType: "conformance", input: Payload(json: "{}"), now: t0,
                    firstTask: WorkflowTaskCompletion(
                        runID: runID, workflowID: "order", leaseToken: nil, expectedTaskVersion: 0, consumedInboxThrough: nil,
                        events: [(scheduleStep, t0), (.timerStarted(seq: 2, fireAt: t0.addingTimeInterval(60)), t0)],
                        eagerLeases: [1: ActivityLease(owner: "a", token: 7, expiresAt: t0.addingTimeInterval(30))], now: t0))
            }
            let runID = RunID.make()
            let first = try await store.startWorkflow(request(runID: runID))
            #expect(first.created && first.runID == runID)
            #expect(try await store.history(runID: runID).map(\.kind.name) == ["workflowStarted", "activityScheduled", "timerStarted"])
            #expect(try await store.run(runID: runID)?.historyLength == 3)
            let pending = try await store.pendingWork(runID: runID)
            #expect(pending.activities.map(\.seq) == [1] && pending.timers.map(\.seq) == [2])
            #expect(try await claimOne(store) == nil)  // its first task is done

            let otherID = RunID.make()
            let again = try await store.startWorkflow(request(runID: otherID))
            #expect(!again.created && again.runID == runID)
            #expect(try await store.history(runID: otherID).isEmpty)
            let nothing = try await store.pendingWork(runID: otherID)
            #expect(nothing.activities.isEmpty && nothing.timers.isEmpty)

            // The row is in step with the first task: the fast path continues from it.
            let result = Payload(json: "1")
            let report = ActivityReport(runID: runID, seq: 1, leaseToken: 7, attempt: 1, outcome: .completed(result), now: t0)
            let continuation = WorkflowTaskCompletion(
                runID: runID, workflowID: "order", leaseToken: nil, expectedTaskVersion: 1, consumedInboxThrough: nil,
                events: [(.activityCompleted(seq: 1, result: result, attempt: 1), t0), (.timerCancelled(seq: 2), t0),
                         (.workflowCompleted(result: result), t0)],
                eagerLeases: [:], knownRun: KnownRun(historyLength: 3, constants: Self.knownRun.constants), now: t0)
            #expect(try await store.reportActivityAndContinue(report, continuation: continuation) == .continued(taskVersion: 2))
            #expect(try await store.run(runID: runID)?.status == .completed)
        }
    }

    @Test("a claimed task is leased: not claimable again until the lease expires", arguments: StoreBackend.allCases)
    func leaseExpiry(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "w")
            let task = try #require(try await claimOne(store, owner: "a", lease: .seconds(10)))
            #expect(task.runID == run.runID)
            #expect(task.history?.map(\.kind.name) == ["workflowStarted"])
            #expect(try await claimOne(store, owner: "b", at: t0.addingTimeInterval(9)) == nil)
            let takeover = try #require(try await claimOne(store, owner: "b", at: t0.addingTimeInterval(11)))
            #expect(takeover.runID == run.runID && takeover.leaseToken != task.leaseToken)
        }
    }

    @Test("a commit from a stale lease is refused and writes nothing", arguments: StoreBackend.allCases)
    func staleLeaseFenced(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "w")
            let stale = try #require(try await claimOne(store, owner: "a", lease: .seconds(1)))
            let fresh = try #require(try await claimOne(store, owner: "b", at: t0.addingTimeInterval(2)))
            #expect(try await store.completeWorkflowTask(completion(fresh, [.timerStarted(seq: 1, fireAt: t0.addingTimeInterval(60))]))
                    == .committed(taskVersion: 1))
            guard case .rejected = try await store.completeWorkflowTask(completion(stale, [scheduleStep])) else {
                Issue.record("a stale lease's commit was accepted")
                return
            }
            #expect(try await store.history(runID: run.runID).map(\.kind.name) == ["workflowStarted", "timerStarted"])
            #expect(try await store.pendingWork(runID: run.runID).activities.isEmpty)
        }
    }

    @Test("signals are deduplicated by request id and wait in the inbox in order", arguments: StoreBackend.allCases)
    func signalDedup(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "w")
            let signal = { (name: String, request: String?) in
                try await store.signal(SignalRequest(workflowID: "w", name: name, payload: Payload(json: "\"\(name)\""), requestID: request, now: t0))
            }
            #expect(try await signal("a", "r1") == .delivered(runID: run.runID))
            #expect(try await signal("a", "r1") == .duplicate(runID: run.runID))
            #expect(try await signal("b", nil) == .delivered(runID: run.runID))
            let task = try #require(try await claimOne(store))
            #expect(task.inbox.map(\.kind) == [.signalReceived(name: "a", payload: Payload(json: "\"a\""), requestID: "r1"),
                                                .signalReceived(name: "b", payload: Payload(json: "\"b\""), requestID: nil)])
            await #expect(throws: KeelError.self) {
                try await store.signal(SignalRequest(workflowID: "nobody", name: "x", now: t0))
            }
        }
    }

    @Test("concurrent writes that fail take none of the others down", arguments: StoreBackend.allCases)
    func concurrentFailuresAreIsolated(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "w")
            // Sixty writes at once share transactions (group commit): every third one targets a
            // workflow that does not exist and must fail alone, while all the others land.
            let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
                for index in 0..<60 {
                    group.addTask {
                        let target = index % 3 == 0 ? "missing-\(index)" : "w"
                        let request = SignalRequest(workflowID: target, name: "s\(index)", requestID: "r\(index)", now: t0)
                        return (index, (try? await store.signal(request)) != nil)
                    }
                }
                return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
            }
            #expect(outcomes.filter { $0.value }.keys.sorted() == (0..<60).filter { $0 % 3 != 0 })
            let delivered = try await store.pendingWork(runID: run.runID).inbox.map(\.kind)
            #expect(delivered.count == 40 && Set(delivered) == ["signalReceived"])
        }
    }

    @Test("a task may not close the run over a signal it has not seen", arguments: StoreBackend.allCases)
    func completionRefusedOverUnprocessedSignal(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "w")
            let task = try #require(try await claimOne(store))
            _ = try await store.signal(SignalRequest(workflowID: "w", name: "late", now: t0))
            guard case .rejected = try await store.completeWorkflowTask(completion(task, [.workflowCompleted(result: Payload(json: "1"))])) else {
                Issue.record("the run closed over an unprocessed signal")
                return
            }
            #expect(try await store.run(runID: run.runID)?.status == .running)
            #expect(try await store.history(runID: run.runID).count == 1)  // nothing of the refused close
            let retry = try #require(try await claimOne(store))
            #expect(retry.inbox.map(\.kind.name) == ["signalReceived"])
            #expect(try await store.completeWorkflowTask(completion(retry, retry.inbox.map(\.kind) + [.workflowCompleted(result: Payload(json: "1"))]))
                    == .committed(taskVersion: 1))
            #expect(try await store.run(runID: run.runID)?.status == .completed)
        }
    }

    @Test("a timer fires once, when due", arguments: StoreBackend.allCases)
    func timers(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "w")
            let task = try #require(try await claimOne(store))
            let fireAt = t0.addingTimeInterval(60)
            _ = try await store.completeWorkflowTask(completion(task, [.timerStarted(seq: 1, fireAt: fireAt)]))
            #expect(try await store.nextWakeUp() == fireAt)
            #expect(try await store.fireDueTimers(now: fireAt.addingTimeInterval(-1), limit: 10) == 0)
            #expect(try await store.fireDueTimers(now: fireAt, limit: 10) == 1)
            #expect(try await store.fireDueTimers(now: fireAt.addingTimeInterval(10), limit: 10) == 0)
            let next = try #require(try await claimOne(store, at: fireAt))
            #expect(next.runID == run.runID && next.inbox.map(\.kind) == [.timerFired(seq: 1)])
        }
    }

    @Test("timers due together reach each open run's inbox once, in order, beside an approval's deadline; a closed run gets none",
          arguments: StoreBackend.allCases)
    func timersDueTogether(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let fireAt = t0.addingTimeInterval(60)
            var runIDs: [String] = []
            for index in 0..<5 {
                runIDs.append(try await start(store, "w\(index)").runID)
                let task = try #require(try await claimOne(store))
                // Run 2 also waits for an approval whose deadline is due with the timers; run 4 holds two timers.
                var events: [HistoryEvent.Kind] = [.timerStarted(seq: 1, fireAt: fireAt)]
                if index == 2 {
                    events.append(.approvalRequested(
                        seq: 2, request: ApprovalRequest(id: "apr-together000001", name: "deal", summary: "", payload: Payload(json: "1"),
                                                         approvers: [], deadline: fireAt)))
                }
                if index == 4 { events.append(.timerStarted(seq: 3, fireAt: fireAt.addingTimeInterval(-1))) }
                _ = try await store.completeWorkflowTask(completion(task, events, hasPendingApprovals: index == 2))
            }
            _ = try await store.terminate(workflowID: "w3", reason: "closed before its timer", now: t0)
            #expect(try await store.nextWakeUp(after: fireAt.addingTimeInterval(-2)) == fireAt.addingTimeInterval(-1))
            #expect(try await store.nextWakeUp(after: fireAt.addingTimeInterval(-1)) == fireAt)
            #expect(try await store.fireDueTimers(now: fireAt, limit: 100) == 6)  // w3's timer went with its run
            #expect(try await store.nextWakeUp(after: fireAt) == nil)

            let tasks = try await store.claimWorkflowTasks(owner: "a", limit: 10, lease: .seconds(10), now: fireAt,
                                                           cachedTaskVersion: { _ in nil })
            let inboxes = Dictionary(uniqueKeysWithValues: tasks.map { ($0.runID, $0.inbox.map(\.kind.name)) })
            #expect(Set(inboxes.keys) == Set([runIDs[0], runIDs[1], runIDs[2], runIDs[4]]))
            #expect(inboxes[runIDs[0]] == ["timerFired"] && inboxes[runIDs[1]] == ["timerFired"])
            #expect(inboxes[runIDs[2]] == ["timerFired", "approvalDecided"])
            #expect(tasks.first { $0.runID == runIDs[4] }?.inbox.map(\.kind) == [.timerFired(seq: 1), .timerFired(seq: 3)])
            #expect(try await store.approval(id: "apr-together000001")?.status == .expired)
        }
    }

    @Test("an approval request is stored with its deadline timer; a decision reaches the inbox once and removes the timer",
          arguments: StoreBackend.allCases)
    func approvalDecision(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "deal")
            let task = try #require(try await claimOne(store))
            let request = ApprovalRequest(id: "apr-conformance0001", name: "manager", summary: "Discount", payload: Payload(json: "{\"pct\":10}"),
                                          approvers: ["ada"], deadline: t0.addingTimeInterval(3600))
            _ = try await store.completeWorkflowTask(completion(task, [.approvalRequested(seq: 1, request: request)]))
            let stored = try #require(try await store.approval(id: request.id))
            #expect(stored.status == .pending && stored.seq == 1 && stored.workflowID == "deal" && stored.workflowType == "conformance")
            #expect(stored.request == request)
            #expect(try await store.listApprovals(ApprovalQuery(pendingOnly: true)).map(\.id) == [request.id])
            #expect(try await store.pendingWork(runID: run.runID).timers.map(\.seq) == [1])

            let attempt = ApprovalDecisionRequest(approvalID: request.id, approve: true, decidedBy: "ada", note: "ok", origin: "test",
                                                  now: t0.addingTimeInterval(60))
            let decided = try await store.decideApproval(attempt)
            #expect(decided.status == .approved && decided.decision?.decidedBy == "ada")
            await #expect(throws: KeelError.self) { try await store.decideApproval(attempt) }
            #expect(try await store.pendingWork(runID: run.runID).timers.isEmpty)
            #expect(try await store.fireDueTimers(now: t0.addingTimeInterval(7200), limit: 10) == 0)
            let next = try #require(try await claimOne(store, at: t0.addingTimeInterval(60)))
            guard case .approvalDecided(1, let decision)? = next.inbox.map(\.kind).first, next.inbox.count == 1 else {
                Issue.record("expected one approvalDecided in the inbox, got \(next.inbox.map(\.kind.name))")
                return
            }
            #expect(decision.outcome == .approved && decision.note == "ok")
            #expect(try await store.approvalAudit(approvalID: request.id).map(\.action) == [.requested, .approved, .refused])
            #expect(try await store.listApprovals(ApprovalQuery(pendingOnly: true)).isEmpty)
        }
    }

    @Test("an approval's deadline expires it unless decided first; a closing run withdraws pending approvals",
          arguments: StoreBackend.allCases)
    func approvalExpiryAndWithdrawal(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "deal")
            let task = try #require(try await claimOne(store))
            let deadline = t0.addingTimeInterval(3600)
            let expiring = ApprovalRequest(id: "apr-expiring000001", name: "first", summary: "", payload: Payload(json: "1"),
                                           approvers: [], deadline: deadline)
            let withdrawn = ApprovalRequest(id: "apr-withdrawn00001", name: "second", summary: "", payload: Payload(json: "2"),
                                            approvers: [], deadline: deadline.addingTimeInterval(3600))
            _ = try await store.completeWorkflowTask(completion(task, [.approvalRequested(seq: 1, request: expiring),
                                                                       .approvalRequested(seq: 2, request: withdrawn)]))
            #expect(try await store.nextWakeUp() == deadline)
            #expect(try await store.fireDueTimers(now: deadline, limit: 10) == 1)
            #expect(try await store.approval(id: expiring.id)?.status == .expired)
            let late = ApprovalDecisionRequest(approvalID: expiring.id, approve: true, decidedBy: "ada", origin: "test", now: deadline)
            await #expect(throws: KeelError.self) { try await store.decideApproval(late) }

            let next = try #require(try await claimOne(store, at: deadline))
            #expect(next.runID == run.runID)
            guard case .approvalDecided(1, let decision)? = next.inbox.first?.kind else {
                Issue.record("expected the expiry in the inbox, got \(next.inbox.map(\.kind.name))")
                return
            }
            #expect(decision.outcome == .expired)
            _ = try await store.completeWorkflowTask(completion(next, next.inbox.map(\.kind) + [.workflowCompleted(result: Payload(json: "1"))],
                                                                at: deadline, hasPendingApprovals: true))
            #expect(try await store.approval(id: withdrawn.id)?.status == .withdrawn)
            #expect(try await store.approvalAudit(approvalID: withdrawn.id).map(\.action) == [.requested, .withdrawn])
            #expect(try await store.fireDueTimers(now: deadline.addingTimeInterval(7200), limit: 10) == 0)
        }
    }

    @Test("a failed compensation parks the run, open; only then may an operator ask for a retry", arguments: StoreBackend.allCases)
    func compensationParking(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "saga")
            await #expect(throws: KeelError.self) { try await store.retryCompensation(workflowID: "saga", requestedBy: nil, now: t0) }
            let task = try #require(try await claimOne(store))
            let failure = ErrorInfo(type: "StepFailed", message: "undo failed")
            _ = try await store.completeWorkflowTask(completion(task, [
                .compensationStarted(seq: 1, cause: failure), .compensationFailed(seq: 2, activity: "undo", failure: failure),
            ]))
            var parked = try #require(try await store.run(runID: run.runID))
            #expect(parked.status == .compensationFailed && parked.status.isOpen)
            #expect(parked.statusReason?.contains("compensation 'undo' failed") == true)
            #expect(try await start(store, "saga").runID == run.runID)  // it keeps its workflow id
            _ = try await store.signal(SignalRequest(workflowID: "saga", name: "note", now: t0))
            #expect(try await claimOne(store, at: t0.addingTimeInterval(60)) == nil)  // parked: not claimable

            #expect(try await store.retryCompensation(workflowID: "saga", requestedBy: "ops", now: t0) == run.runID)
            parked = try #require(try await store.run(runID: run.runID))
            #expect(parked.status == .running && parked.statusReason == nil)
            let next = try #require(try await claimOne(store, at: t0.addingTimeInterval(60)))
            #expect(next.inbox.map(\.kind.name) == ["signalReceived", "compensationRetryRequested"])
        }
    }

    @Test("activity attempts: leased, retried later with the same key and the next attempt, stale reports ignored",
          arguments: StoreBackend.allCases)
    func activityAttempts(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "w")
            let task = try #require(try await claimOne(store))
            _ = try await store.completeWorkflowTask(completion(task, [scheduleStep]))
            let claim = { (time: Date) in try await store.claimActivityTasks(owner: "a", limit: 10, defaultLease: .seconds(30), now: time) }
            let first = try #require(try await claim(t0).first)
            #expect(first.attempt == 1 && first.idempotencyKey == "key-1")
            #expect(try await claim(t0).isEmpty)
            let failure = ErrorInfo(type: "Transient", message: "try again")
            #expect(try await store.reportActivity(ActivityReport(runID: run.runID, seq: 1, leaseToken: first.leaseToken, attempt: 1,
                                                                  outcome: .retry(failure, at: t0.addingTimeInterval(5)), now: t0)))
            #expect(try await claim(t0.addingTimeInterval(4)).isEmpty)
            let second = try #require(try await claim(t0.addingTimeInterval(5)).first)
            #expect(second.attempt == 2 && second.idempotencyKey == "key-1")
            // A report under the first attempt's lease is stale.
            #expect(try await !store.reportActivity(ActivityReport(runID: run.runID, seq: 1, leaseToken: first.leaseToken, attempt: 1,
                                                                   outcome: .completed(Payload(json: "1")), now: t0)))
            // A lost attempt (lease expired) is taken over with the next attempt number.
            let third = try #require(try await claim(t0.addingTimeInterval(40)).first)
            #expect(third.attempt == 3)
            #expect(try await store.reportActivity(ActivityReport(runID: run.runID, seq: 1, leaseToken: third.leaseToken, attempt: 3,
                                                                  outcome: .completed(Payload(json: "\"done\"")), now: t0)))
            let next = try #require(try await claimOne(store, at: t0.addingTimeInterval(41)))
            #expect(next.inbox.map(\.kind) == [.activityCompleted(seq: 1, result: Payload(json: "\"done\""), attempt: 3)])
        }
    }

    /// How a fast path's worker knows the run it continues: `nil` makes the store read the fence
    /// under the run's lock first; a known run makes it check the fence within the writes.
    static let knownRun = KnownRun(historyLength: 2, constants: RunConstants(taskQueue: "default", startedBySchedule: false))

    @Test("the fast path commits outcome and continuation together only when the run is in step",
          arguments: StoreBackend.allCases, [nil, knownRun])
    func fastPath(backend: StoreBackend, knownRun: KnownRun?) async throws {
        try await backend.withStore { store in
            for (index, inStep) in [true, false].enumerated() {
                let id = "w\(index)"
                let run = try await start(store, id)
                let task = try #require(try await store.claimWorkflowTasks(owner: "a", limit: 1, lease: .seconds(10), now: t0,
                                                                             cachedTaskVersion: { _ in nil }).first)
                var first = completion(task, [scheduleStep])
                first.eagerLeases = [1: ActivityLease(owner: "a", token: 42, expiresAt: t0.addingTimeInterval(30))]
                #expect(try await store.completeWorkflowTask(first) == .committed(taskVersion: 1))
                #expect(try await store.claimActivityTasks(owner: "b", limit: 10, defaultLease: .seconds(30), now: t0).isEmpty)

                let result = Payload(json: "1")
                let report = ActivityReport(runID: run.runID, seq: 1, leaseToken: 42, attempt: 1, outcome: .completed(result), now: t0)
                let continuation = WorkflowTaskCompletion(
                    runID: run.runID, workflowID: id, leaseToken: nil, expectedTaskVersion: 1, consumedInboxThrough: nil,
                    events: [(.activityCompleted(seq: 1, result: result, attempt: 1), t0), (.workflowCompleted(result: result), t0)],
                    eagerLeases: [:], knownRun: knownRun, now: t0)
                if inStep {
                    #expect(try await store.reportActivityAndContinue(report, continuation: continuation) == .continued(taskVersion: 2))
                    #expect(try await store.run(runID: run.runID)?.status == .completed)
                } else {
                    // Out of step: a signal is waiting, so only the outcome is recorded, into the inbox.
                    _ = try await store.signal(SignalRequest(workflowID: id, name: "s", now: t0))
                    #expect(try await store.reportActivityAndContinue(report, continuation: continuation) == .outcomeOnly)
                    #expect(try await store.run(runID: run.runID)?.status == .running)
                    #expect(try await store.pendingWork(runID: run.runID).inbox.map(\.kind) == ["signalReceived", "activityCompleted"])
                }
                // A second report of the same outcome is recorded once.
                #expect(try await store.reportActivityAndContinue(report, continuation: continuation) == .stale)
            }
        }
    }

    @Test("a claimed task's commit checks its fence in its writes; an event queued since the claim is neither lost nor closed over",
          arguments: StoreBackend.allCases)
    func claimedTaskWithKnownRun(backend: StoreBackend) async throws {
        try await backend.withStore { store in
            // The commit of `task` as a worker that knows the run sends it.
            func known(_ task: WorkflowTask, _ events: [HistoryEvent.Kind], historyLength: Int) -> WorkflowTaskCompletion {
                var commit = completion(task, events)
                commit.knownRun = KnownRun(historyLength: historyLength, constants: Self.knownRun.constants)
                commit.claimedInboxVersion = task.inboxVersion
                return commit
            }
            let run = try await start(store, "w")
            let first = try #require(try await claimOne(store))
            #expect(try await store.completeWorkflowTask(
                known(first, [.timerStarted(seq: 1, fireAt: t0.addingTimeInterval(60))], historyLength: 1)) == .committed(taskVersion: 1))
            #expect(try await claimOne(store) == nil)

            // A signal comes after the claim: the commit stands, and the run needs another task for it.
            _ = try await store.signal(SignalRequest(workflowID: "w", name: "a", now: t0))
            let second = try #require(try await claimOne(store))
            #expect(second.inboxVersion == first.inboxVersion + 1)
            _ = try await store.signal(SignalRequest(workflowID: "w", name: "b", now: t0))
            #expect(try await store.completeWorkflowTask(known(second, second.inbox.map(\.kind), historyLength: 2))
                    == .committed(taskVersion: 2))
            let third = try #require(try await claimOne(store))
            #expect(third.inbox.map(\.kind) == [.signalReceived(name: "b", payload: .emptyObject, requestID: nil)])

            // One comes before a close: the close is refused, writing nothing.
            _ = try await store.signal(SignalRequest(workflowID: "w", name: "c", now: t0))
            guard case .rejected = try await store.completeWorkflowTask(
                known(third, third.inbox.map(\.kind) + [.workflowCompleted(result: Payload(json: "1"))], historyLength: 3))
            else {
                Issue.record("the run closed over a signal its task had not seen")
                return
            }
            #expect(try await store.run(runID: run.runID)?.status == .running)
            #expect(try await store.history(runID: run.runID).count == 3)
            let fourth = try #require(try await claimOne(store))
            #expect(fourth.inbox.map(\.kind.name) == ["signalReceived", "signalReceived"])
            #expect(try await store.completeWorkflowTask(
                known(fourth, fourth.inbox.map(\.kind) + [.workflowCompleted(result: Payload(json: "1"))], historyLength: 3))
                    == .committed(taskVersion: 3))
            #expect(try await store.run(runID: run.runID)?.status == .completed)
            #expect(try await store.history(runID: run.runID).count == 6)
        }
    }

    @Test("the fast path of a run whose history another task moved on records only the outcome; its events do not land",
          arguments: StoreBackend.allCases, [nil, knownRun])
    func fastPathAfterAnotherTask(backend: StoreBackend, knownRun: KnownRun?) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "w")
            let task = try #require(try await store.claimWorkflowTasks(owner: "a", limit: 1, lease: .seconds(10), now: t0,
                                                                         cachedTaskVersion: { _ in nil }).first)
            var first = completion(task, [scheduleStep])
            first.eagerLeases = [1: ActivityLease(owner: "a", token: 42, expiresAt: t0.addingTimeInterval(30))]
            #expect(try await store.completeWorkflowTask(first) == .committed(taskVersion: 1))
            // A signal, taken by another worker's task (this worker's cache does not see it).
            _ = try await store.signal(SignalRequest(workflowID: "w", name: "s", now: t0))
            let other = try #require(try await store.claimWorkflowTasks(owner: "b", limit: 1, lease: .seconds(10), now: t0,
                                                                          cachedTaskVersion: { _ in nil }).first)
            let taken = try #require(other.inbox.last)
            var second = completion(other, [taken.kind, .timerStarted(seq: 2, fireAt: t0.addingTimeInterval(60))])
            second.consumedInboxThrough = taken.id
            #expect(try await store.completeWorkflowTask(second) == .committed(taskVersion: 2))
            let history = try await store.history(runID: run.runID)

            let result = Payload(json: "1")
            let report = ActivityReport(runID: run.runID, seq: 1, leaseToken: 42, attempt: 1, outcome: .completed(result), now: t0)
            let continuation = WorkflowTaskCompletion(
                runID: run.runID, workflowID: "w", leaseToken: nil, expectedTaskVersion: 1, consumedInboxThrough: nil,
                events: [(.activityCompleted(seq: 1, result: result, attempt: 1), t0), (.workflowCompleted(result: result), t0)],
                eagerLeases: [:], knownRun: knownRun, now: t0)
            #expect(try await store.reportActivityAndContinue(report, continuation: continuation) == .outcomeOnly)
            #expect(try await store.run(runID: run.runID)?.status == .running)
            #expect(try await store.history(runID: run.runID).map(\.kind) == history.map(\.kind))
            let pending = try await store.pendingWork(runID: run.runID)
            #expect(pending.inbox.map(\.kind) == ["activityCompleted"])
            #expect(pending.timers.map(\.seq) == [2])
        }
    }

    @Test("the fast path of an attempt whose lease was lost writes nothing, though the run is in step",
          arguments: StoreBackend.allCases, [nil, knownRun])
    func fastPathLostLease(backend: StoreBackend, knownRun: KnownRun?) async throws {
        try await backend.withStore { store in
            let run = try await start(store, "w")
            let task = try #require(try await store.claimWorkflowTasks(owner: "a", limit: 1, lease: .seconds(10), now: t0,
                                                                         cachedTaskVersion: { _ in nil }).first)
            var first = completion(task, [scheduleStep, .timerStarted(seq: 2, fireAt: t0.addingTimeInterval(60))])
            first.eagerLeases = [1: ActivityLease(owner: "a", token: 42, expiresAt: t0.addingTimeInterval(30))]
            #expect(try await store.completeWorkflowTask(first) == .committed(taskVersion: 1))
            let before = try await store.history(runID: run.runID).count

            // Another attempt holds the activity now (token 43): this report's commit must not stand.
            let result = Payload(json: "1")
            let report = ActivityReport(runID: run.runID, seq: 1, leaseToken: 43, attempt: 1, outcome: .completed(result), now: t0)
            let continuation = WorkflowTaskCompletion(
                runID: run.runID, workflowID: "w", leaseToken: nil, expectedTaskVersion: 1, consumedInboxThrough: nil,
                events: [(.activityCompleted(seq: 1, result: result, attempt: 1), t0), (.timerCancelled(seq: 2), t0),
                         (.workflowCompleted(result: result), t0)],
                eagerLeases: [:], knownRun: knownRun.map { KnownRun(historyLength: 3, constants: $0.constants) }, now: t0)
            #expect(try await store.reportActivityAndContinue(report, continuation: continuation) == .stale)
            #expect(try await store.run(runID: run.runID)?.status == .running)
            #expect(try await store.history(runID: run.runID).count == before)
            let pending = try await store.pendingWork(runID: run.runID)
            #expect(pending.activities.map(\.seq) == [1])
            #expect(pending.timers.map(\.seq) == [2])

            // The attempt that holds the lease commits.
            let held = ActivityReport(runID: run.runID, seq: 1, leaseToken: 42, attempt: 1, outcome: .completed(result), now: t0)
            #expect(try await store.reportActivityAndContinue(held, continuation: continuation) == .continued(taskVersion: 2))
            #expect(try await store.run(runID: run.runID)?.status == .completed)
            #expect(try await store.pendingWork(runID: run.runID).activities.isEmpty)
        }
    }
}
