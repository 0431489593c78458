import Foundation
import GRDB
import KeelCLI
import KeelPostgres
import KeelTestSupport
import Logging
import PostgresNIO
import Testing
import WorkflowRuntime
import Workflows

/// The database an end-to-end test runs against: the scratch directory's SQLite file, or a fresh
/// database on the PostgreSQL test server (`KEEL_TEST_POSTGRES_URL`).
enum TestBackend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    func databaseURL(in scratch: Scratch) async throws -> String {
        switch self {
        case .sqlite: scratch.databaseURL
        case .postgres: try await PostgresTestServer.freshDatabaseURL()
        }
    }
}

/// A row of `diagnostic_compensations`: one per compensation idempotency key.
struct CompensationRow: Sendable, Hashable, CustomStringConvertible {
    var idempotencyKey: String
    var effectKey: String
    var workflowID: String
    var step: Int
    var undone: Bool
    var attempts: Int

    var description: String { "\(idempotencyKey) effect=\(effectKey) step=\(step) undone=\(undone) attempts=\(attempts)" }
}

/// A row of `diagnostic_effects`: one per effect idempotency key.
struct EffectRow: Sendable, Hashable {
    var idempotencyKey: String
    var workflowID: String
    var step: Int
    var attempts: Int
}

/// Reads the diagnostic activities' tables, in the SQLite file or through the PostgreSQL store's client.
enum DiagnosticTables {
    static func compensations(store: any WorkflowStore, scratch: Scratch) async throws -> [CompensationRow] {
        let sql = "SELECT idempotency_key, effect_key, workflow_id, step, undone, attempts FROM diagnostic_compensations"
        if let postgres = (store as? SQLWorkflowStore)?.postgresDriver {
            let rows = try await postgres.client.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test"))
            var result: [CompensationRow] = []
            for try await (key, effect, workflow, step, undone, attempts) in rows.decode((String, String, String, Int, Bool, Int).self) {
                result.append(CompensationRow(idempotencyKey: key, effectKey: effect, workflowID: workflow, step: step,
                                              undone: undone, attempts: attempts))
            }
            return result
        }
        return try await DatabaseQueue(path: scratch.databasePath).read { db in
            try Row.fetchAll(db, sql: sql).map { row in
                CompensationRow(idempotencyKey: row[0], effectKey: row[1], workflowID: row[2], step: row[3], undone: row[4], attempts: row[5])
            }
        }
    }

    /// The workflows with an attempt of `activity` leased to `owner` right now.
    static func workflowsWithLeasedActivity(_ activity: String, owner: String, store: any WorkflowStore,
                                            scratch: Scratch) async throws -> [String] {
        if let postgres = (store as? SQLWorkflowStore)?.postgresDriver {
            let rows = try await postgres.client.query(
                "SELECT workflow_id FROM activity_tasks WHERE activity_name = \(activity) AND lease_owner = \(owner)", logger: Logger(label: "test"))
            var result: [String] = []
            for try await id in rows.decode(String.self) { result.append(id) }
            return result
        }
        return try await DatabaseQueue(path: scratch.databasePath).read { db in
            try String.fetchAll(db, sql: "SELECT workflow_id FROM activity_tasks WHERE activity_name = ? AND lease_owner = ?",
                                arguments: [activity, owner])
        }
    }

    static func effects(store: any WorkflowStore, scratch: Scratch) async throws -> [EffectRow] {
        let sql = "SELECT idempotency_key, workflow_id, step, attempts FROM diagnostic_effects"
        if let postgres = (store as? SQLWorkflowStore)?.postgresDriver {
            let rows = try await postgres.client.query(PostgresQuery(unsafeSQL: sql), logger: Logger(label: "test"))
            var result: [EffectRow] = []
            for try await (key, workflow, step, attempts) in rows.decode((String, String, Int, Int).self) {
                result.append(EffectRow(idempotencyKey: key, workflowID: workflow, step: step, attempts: attempts))
            }
            return result
        }
        return try await DatabaseQueue(path: scratch.databasePath).read { db in
            try Row.fetchAll(db, sql: sql).map { row in
                EffectRow(idempotencyKey: row[0], workflowID: row[1], step: row[2], attempts: row[3])
            }
        }
    }
}


/// The CLI's time format (`Formatting.time`), to find a deadline in a table.
private func cliTime(_ date: Date) -> String {
    date.formatted(.iso8601.year().month().day().time(includingFractionalSeconds: false).dateTimeSeparator(.space))
}

/// `worker approvals ID --json`.
private struct ApprovalDetailsJSON: Decodable {
    var approval: ApprovalRecord
    var audit: [ApprovalAuditEntry]
}

@Suite("Approvals: the CLI round trip by a person", .serialized)
struct ApprovalCLITests {
    static let approvers = ["alice", "role:legal"]

    static func input(summary: String, terms: String) -> String {
        #"{"summary":"\#(summary)","payload":{"terms":"\#(terms)"},"deadlineSeconds":3600,"approvers":["alice","role:legal"]}"#
    }

    /// Waits until the run of `workflowID` has asked for its approval, and returns the request as stored.
    private static func pendingApproval(of workflowID: String, client: WorkflowClient) async throws -> ApprovalRecord {
        try await eventually("the approval request of \(workflowID)") {
            try await client.approvals(ApprovalQuery(pendingOnly: true)).first { $0.workflowID == workflowID }
        }
    }

    /// Migrates a fresh database of `backend`, runs a daemon on it, starts `diagnostics.approval`
    /// as `workflowID` with the CLI, runs `body` once its approval is pending, then stops the
    /// daemon (which must drain and exit 0).
    private static func withPendingApproval(
        _ backend: TestBackend, workflowID: String, summary: String, terms: String,
        _ body: (Scratch, String, any WorkflowStore, WorkflowClient, WorkflowRun, ApprovalRecord) async throws -> Void
    ) async throws {
        let scratch = try Scratch()
        defer { scratch.remove() }
        let db = try await backend.databaseURL(in: scratch)
        let migrated = try await WorkerBinary.run(["migrate"], database: db)
        #expect(migrated.status == 0, "migrate: \(migrated.stderr)")
        let daemon = try await Daemon(database: db, logPath: scratch.logPath)
        try await Daemon.waitForStart(logPath: scratch.logPath, count: 1)

        try await StoreLocation(url: db).withStore { store in
            let client = WorkflowClient(store: store)
            let started = try await WorkerBinary.run(
                ["start", "diagnostics.approval", "--id", workflowID, "--input", input(summary: summary, terms: terms)], database: db)
            try #require(started.status == 0, "worker start: \(started.stderr)")
            let run = try #require(try await store.findRun(workflowID: workflowID))
            let pending = try await pendingApproval(of: workflowID, client: client)
            try await body(scratch, db, store, client, run, pending)
        }
        #expect(try await daemon.terminate() == 0)
    }

    @Test("approve: listing, refused decisions with exact exit codes and no change, approval by alice, show and audit trail",
          .timeLimit(.minutes(3)), arguments: TestBackend.allCases)
    func approveRoundTrip(backend: TestBackend) async throws {
        try await Self.withPendingApproval(backend, workflowID: "cli-approve", summary: "Partner Acme", terms: "net 30") {
            scratch, db, store, client, run, pending in
            let id = pending.id
            let hash = pending.request.payloadHash
            #expect(hash == ApprovalRequest.hash(of: Payload(json: #"{"terms":"net 30"}"#)), "the hash is the SHA-256 of the exact payload")
            #expect(pending.request.approvers == Self.approvers)

            // The person finds it: text table and JSON.
            let table = try await WorkerBinary.run(["approvals", "--pending"], database: db)
            #expect(table.status == 0, "approvals --pending: \(table.stderr)")
            let line = table.stdout.split(separator: "\n").first { $0.contains(id) }.map(String.init)
            #expect(line != nil, "approvals --pending lists \(id):\n\(table.stdout)")
            for field in ["cli-approve", "diagnostics-approval", "pending", "Partner Acme", cliTime(pending.request.deadline),
                          "alice,role:legal", String(hash.prefix(12))] {
                #expect(line?.contains(field) == true, "the pending line shows '\(field)': \(line ?? table.stdout)")
            }
            let listed = try await WorkerBinary.run(["approvals", "--pending", "--json"], database: db)
            #expect(listed.status == 0, "approvals --pending --json: \(listed.stderr)")
            let records = try JSONDecoder.iso8601.decode([ApprovalRecord].self, from: Data(listed.stdout.utf8))
            let record = try #require(records.first { $0.id == id }, "approvals --pending --json lists \(id): \(listed.stdout)")
            #expect(record.workflowID == "cli-approve" && record.runID == run.runID && record.status == .pending)
            #expect(record.request.payloadHash == hash && record.request.summary == "Partner Acme")
            #expect(record.request.approvers == Self.approvers)
            #expect(record.request.payload.description == #"{"terms":"net 30"}"#, "the JSON shows the exact payload")
            #expect(abs(record.request.deadline.timeIntervalSince(pending.request.deadline)) < 1)

            // Refused attempts: exact exit codes, a message, and nothing changed.
            let historyBefore = try await store.history(runID: run.runID)
            func expectNothingChanged(after attempt: String) async throws {
                let (now, _) = try await client.approval(id)
                #expect(now.status == .pending && now.decision == nil, "\(attempt) left the approval pending: \(now.status)")
                #expect(try await store.history(runID: run.runID) == historyBefore, "\(attempt) wrote nothing to the run's history")
                #expect(try await store.run(runID: run.runID)?.status == .running, "\(attempt) left the run running")
            }
            let unauthorized = try await WorkerBinary.run(["approve", id, "--by", "mallory"], database: db)
            #expect(unauthorized.status == 7, "unauthorized decider exits 7, got \(unauthorized.status): \(unauthorized.stderr)")
            #expect(unauthorized.stderr.contains("mallory may not decide approval \(id)"), "\(unauthorized.stderr)")
            try await expectNothingChanged(after: "an unauthorized decider")

            let wrongRole = try await WorkerBinary.run(["approve", id, "--by", "carol", "--role", "finance"], database: db)
            #expect(wrongRole.status == 7, "a decider in a role not allowed exits 7, got \(wrongRole.status): \(wrongRole.stderr)")
            #expect(wrongRole.stderr.contains("may not decide"), "\(wrongRole.stderr)")
            try await expectNothingChanged(after: "a decider in the wrong role")

            // A name is a person's: one written as a role, or blank, is refused before the store.
            for name in ["role:legal", "   ", "ali\u{1B}[2Kce"] {
                let spoofed = try await WorkerBinary.run(["approve", id, "--by", name], database: db)
                #expect(spoofed.status == 2, "--by '\(name)' exits 2, got \(spoofed.status): \(spoofed.stderr)")
                #expect(spoofed.stderr.contains("decider's name"), "\(spoofed.stderr)")
                try await expectNothingChanged(after: "--by '\(name)'")
            }

            let wrongPrefix = hash.hasPrefix("00000000") ? "ffffffff" : "00000000"
            let wrongHash = try await WorkerBinary.run(["approve", id, "--by", "alice", "--hash", wrongPrefix], database: db)
            #expect(wrongHash.status == 7, "a wrong --hash exits 7, got \(wrongHash.status): \(wrongHash.stderr)")
            #expect(wrongHash.stderr.contains("not \(wrongPrefix)"), "\(wrongHash.stderr)")
            try await expectNothingChanged(after: "a wrong --hash")

            for malformed in ["xyz", String(hash.prefix(5)), "g" + String(hash.prefix(7))] {
                let bad = try await WorkerBinary.run(["approve", id, "--by", "alice", "--hash", malformed], database: db)
                #expect(bad.status == 2, "a malformed --hash '\(malformed)' exits 2, got \(bad.status): \(bad.stderr)")
                #expect(bad.stderr.contains("6 to 64 hex digits"), "\(bad.stderr)")
            }
            try await expectNothingChanged(after: "a malformed --hash")

            let unknown = try await WorkerBinary.run(["approve", "apr-0000000000000000", "--by", "alice"], database: db)
            #expect(unknown.status == 3, "an unknown approval id exits 3, got \(unknown.status): \(unknown.stderr)")
            #expect(unknown.stderr.contains("no approval with id 'apr-0000000000000000'"), "\(unknown.stderr)")
            try await expectNothingChanged(after: "an unknown approval id")

            let noReason = try await WorkerBinary.run(["reject", id, "--by", "alice"], database: db)
            #expect(noReason.status != 0, "reject without --reason is a usage error")
            #expect(noReason.stderr.contains("--reason"), "the usage error names --reason: \(noReason.stderr)")
            try await expectNothingChanged(after: "reject without --reason")

            let retryOpen = try await WorkerBinary.run(["retry", "cli-approve"], database: db)
            #expect(retryOpen.status == 4, "retry of a run whose compensation did not fail exits 4, got \(retryOpen.status): \(retryOpen.stderr)")
            try await expectNothingChanged(after: "a retry of a run that is not compensationFailed")

            // The approval, bound to the payload by the first 8 hex digits of its hash.
            let approved = try await WorkerBinary.run(["approve", id, "--by", "alice", "--hash", String(hash.prefix(8)), "--note", "ok"],
                                                database: db)
            #expect(approved.status == 0, "approve exits 0: \(approved.stderr)")
            #expect(approved.stdout.contains("approved \(id)"), "\(approved.stdout)")
            let again = try await WorkerBinary.run(["approve", id, "--by", "alice"], database: db)
            #expect(again.status == 7, "a second approval exits 7, got \(again.status): \(again.stderr)")
            #expect(again.stderr.contains("already approved"), "\(again.stderr)")

            let closed = try await client.waitForClose(runID: run.runID, timeout: .seconds(60))
            #expect(closed.status == .completed, "the approved run completes: \(closed.status) \(closed.failure?.description ?? "")")
            let decision = try closed.result?.decode(as: ApprovalDecision.self)
            #expect(decision?.outcome == .approved && decision?.decidedBy == "alice" && decision?.note == "ok",
                    "the workflow got alice's approval: \(String(describing: decision))")
            let history = try await store.history(runID: run.runID).map(\.kind.name)
            #expect(history.filter { $0 == "approvalDecided" }.count == 1, "one decision in the history: \(history)")
            #expect(!history.contains("compensationStarted"), "an approved run compensates nothing: \(history)")

            let show = try await WorkerBinary.run(["show", "cli-approve"], database: db)
            #expect(show.status == 0, "show: \(show.stderr)")
            for text in ["completed", "Approvals", id, "approved by alice", "Timeline", "workflowStarted", "approvalRequested",
                         "approvalDecided", "workflowCompleted"] {
                #expect(show.stdout.contains(text), "worker show shows '\(text)':\n\(show.stdout)")
            }

            // --json: payloads are JSON values a script can index; dates inside them are ISO-8601.
            let shown = try await WorkerBinary.run(["show", "cli-approve", "--json"], database: db)
            #expect(shown.status == 0, "show --json: \(shown.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(shown.stdout.utf8)) as? [String: Any]
            let shownRun = object?["run"] as? [String: Any]
            let result = shownRun?["result"] as? [String: Any]
            #expect(result?["decidedBy"] as? String == "alice", "run.result is an object: \(shown.stdout)")
            let decidedAt = try #require(result?["decidedAt"] as? String, "decidedAt is text: \(shown.stdout)")
            #expect((try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(decidedAt)) != nil,
                    "decidedAt is ISO-8601: \(decidedAt)")
            let input = shownRun?["input"] as? [String: Any]
            #expect((input?["payload"] as? [String: Any])?["terms"] as? String == "net 30", "run.input is an object: \(shown.stdout)")

            // The audit trail: the request, the refused attempts, the approval, the refused second approval.
            let trail = try await WorkerBinary.run(["approvals", id, "--json"], database: db)
            #expect(trail.status == 0, "approvals ID --json: \(trail.stderr)")
            let details = try JSONDecoder.iso8601.decode(ApprovalDetailsJSON.self, from: Data(trail.stdout.utf8))
            #expect(details.approval.status == .approved && details.approval.decision?.decidedBy == "alice")
            #expect(details.audit.map(\.action) == [.requested, .refused, .refused, .refused, .approved, .refused],
                    "audit actions: \(details.audit.map(\.action.rawValue))")
            let refusedBy = details.audit.filter { $0.action == .refused }.map { [$0.actor ?? "-", $0.role ?? "-"].joined(separator: "/") }
            #expect(refusedBy == ["mallory/-", "carol/finance", "alice/-", "alice/-"], "refused deciders: \(refusedBy)")
            let approval = details.audit.first { $0.action == .approved }
            #expect(approval?.actor == "alice" && approval?.note == "ok", "\(String(describing: approval))")
            #expect(details.audit.dropFirst().allSatisfy { $0.origin?.hasPrefix("cli ") == true }, "every decision names its origin")
            let text = try await WorkerBinary.run(["approvals", id], database: db)
            #expect(text.status == 0, "approvals ID: \(text.stderr)")
            for fragment in ["Status    approved", "Decision  approved by alice", "Audit", "requested", "refused", "mallory",
                             "carol as finance", "already approved", hash] {
                #expect(text.stdout.contains(fragment), "worker approvals ID shows '\(fragment)':\n\(text.stdout)")
            }
            #expect(text.stdout.split(separator: "\n").contains { $0.contains("approved") && $0.contains("alice") && $0.hasSuffix("ok") },
                    "the audit has alice's approval with her note:\n\(text.stdout)")

            let retryClosed = try await WorkerBinary.run(["retry", "cli-approve"], database: db)
            #expect(retryClosed.status == 4, "retry of a completed run exits 4, got \(retryClosed.status): \(retryClosed.stderr)")
            let pendingAfter = try await WorkerBinary.run(["approvals", "--pending"], database: db)
            #expect(!pendingAfter.stdout.contains(id), "a decided approval is no longer pending:\n\(pendingAfter.stdout)")
        }
    }

    @Test("reject: the run compensates its one effect exactly once and ends compensated", .timeLimit(.minutes(3)),
          arguments: TestBackend.allCases)
    func rejectCompensates(backend: TestBackend) async throws {
        try await Self.withPendingApproval(backend, workflowID: "cli-reject", summary: "Partner Risky", terms: "net 90") {
            scratch, db, store, client, run, pending in

            let rejected = try await WorkerBinary.run(["reject", pending.id, "--by", "carol", "--role", "legal", "--reason", "too risky"],
                                                database: db)
            #expect(rejected.status == 0, "reject exits 0: \(rejected.stderr)")
            #expect(rejected.stdout.contains("rejected \(pending.id)"), "\(rejected.stdout)")

            let closed = try await client.waitForClose(runID: run.runID, timeout: .seconds(60))
            #expect(closed.status == .compensated, "the rejected run ends compensated: \(closed.status) \(closed.failure?.description ?? "")")
            #expect(closed.failure?.description.contains("too risky") == true, "the cause names the reason: \(String(describing: closed.failure))")

            let show = try await WorkerBinary.run(["show", "cli-reject"], database: db)
            #expect(show.status == 0, "show: \(show.stderr)")
            for text in ["compensated", "rejected by carol as legal", "too risky", "Timeline", "approvalDecided", "compensationStarted",
                         "diagnostics.undo-effect", "workflowCompensated"] {
                #expect(show.stdout.contains(text), "worker show shows '\(text)':\n\(show.stdout)")
            }
            let lines = show.stdout.split(separator: "\n")
            let compensating = lines.firstIndex { $0.contains("compensationStarted") } ?? .max
            let compensated = lines.firstIndex { $0.contains("workflowCompensated") } ?? .min
            #expect(compensating < compensated, "the timeline has compensationStarted before workflowCompensated:\n\(show.stdout)")

            let rows = try await DiagnosticTables.compensations(store: store, scratch: scratch).filter { $0.workflowID == "cli-reject" }
            #expect(rows.count == 1, "exactly one compensation row for the rejected run: \(rows)")
            let row = try #require(rows.first)
            #expect(row.undone, "the effect existed and was undone: \(row)")
            #expect(row.idempotencyKey == "cli-reject/\(run.runID)/compensation/0", "\(row)")
            #expect(row.effectKey == "cli-reject/\(run.runID)/effect", "\(row)")

            let retry = try await WorkerBinary.run(["retry", "cli-reject"], database: db)
            #expect(retry.status == 4, "retry of a compensated run exits 4, got \(retry.status): \(retry.stderr)")
            let late = try await WorkerBinary.run(["approve", pending.id, "--by", "alice"], database: db)
            #expect(late.status == 7, "approving a rejected request exits 7, got \(late.status): \(late.stderr)")
            #expect(late.stderr.contains("already rejected"), "\(late.stderr)")
        }
    }
}
