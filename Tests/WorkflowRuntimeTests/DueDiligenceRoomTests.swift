import Activities
import Foundation
import Synchronization
import Testing
import WorkflowRuntime
import WorkflowTesting
import Workflows

/// `dd.collect` as a provider outage shows it: the first collection of the named workstream fails for good.
struct CollectFailingOnce: Activity {
    static let name = CollectDDEvidence.name
    let workstream: String
    let failures = Counter()

    final class Counter: Sendable {
        private let count = Mutex(0)
        func next() -> Int { count.withLock { value in defer { value += 1 }; return value } }
    }

    func run(context: ActivityContext, input: DDEvidence) async throws -> DDEvidence {
        if input.workstream == workstream, failures.next() == 0 {
            throw ApplicationError("the document store lost the \(workstream) folder", type: "FolderMissing", nonRetryable: true)
        }
        return try await CollectDDEvidence().run(context: context, input: input)
    }
}

@Suite("Due-diligence room: five workstreams as children, reviews, IC decision, retry or abort, compensations")
struct DueDiligenceRoomTests {
    static func input() -> DueDiligenceRoom.Input {
        DueDiligenceRoom.Input(
            dealID: "deal-dd", target: "Target Co", targetContact: "cfo@target.example", dealLead: "dana@keel.example",
            sender: "deals@keel.example",
            evidence: [
                "financial": DDEvidence(
                    workstream: "financial", documents: ["accounts.pdf"],
                    issues: [DDIssue(title: "Revenue concentration", severity: 3, document: "accounts.pdf")]),
                "legal": DDEvidence(
                    workstream: "legal", documents: ["contracts.zip"],
                    issues: [DDIssue(title: "Change-of-control clause", severity: 5, document: "contracts.zip")]),
                "security": DDEvidence(
                    workstream: "security", documents: [], issues: [DDIssue(title: "No SOC 2", severity: 2)]),
            ])
    }

    func withEnvironment(
        failingCollection: String? = nil, _ body: (TestWorkflowEnvironment, OutboundLedger) async throws -> Void
    ) async throws {
        try await StoreBackend.sqlite.withStore { store in
            let database = WorkflowDatabase(store: store)
            let gateway = try OutboundGateway(database: database, configuration: .shadow)
            var registry = WorkflowRegistry()
            registry.registerOutboundActivities(gateway: gateway)
            try registry.registerBusinessWorkflows(database: database, gateway: gateway)
            if let failingCollection { registry.register(CollectFailingOnce(workstream: failingCollection)) }
            let env = TestWorkflowEnvironment(registry: registry, store: store)
            defer { env.shutdown() }
            try await body(env, gateway.ledger)
        }
    }

    func approve(_ env: TestWorkflowEnvironment, _ name: String, role: String) async throws {
        try await env.runUntilIdle()
        let approval = try #require(
            try await env.client.approvals(ApprovalQuery(pendingOnly: true)).first { $0.request.name == name },
            "no pending \(name)")
        #expect(approval.request.approvers == ["role:\(role)"])
        try await env.client.approve(approval.id, by: "\(role)-lead", role: role)
        try await env.runUntilIdle()
    }

    /// The run's provider calls in history order (compensations included): `activity detail`.
    func calls(_ env: TestWorkflowEnvironment, _ handle: WorkflowHandle) async throws -> [String] {
        try await env.store.history(runID: handle.runID).compactMap { event in
            guard case .activityScheduled(_, let activity, let input, _, _) = event.kind,
                !activity.hasPrefix("dd.")
            else { return nil }
            let fields = try JSONSerialization.jsonObject(with: input.data) as? [String: Any]
            let detail = (fields?["subject"] ?? fields?["stage"] ?? fields?["text"] ?? fields?["name"] ?? fields?["reason"])
            return "\(activity) \(detail.map { "\($0)" } ?? "")"
        }
    }

    @Test("proceed: the room, five workstreams at once, the legal review, the IC memo approved, close preparation")
    func proceed() async throws {
        try await withEnvironment { env, _ in
            let handle = try await env.client.start(DueDiligenceRoom.self, id: "dd-1", input: Self.input())
            try await env.runUntilIdle()
            let children = try await env.client.list(RunQuery(parentWorkflowID: "dd-1"))
            #expect(children.count == 5)
            #expect(try await env.client.describe(workflowID: "dd-1/legal/1").run.stage == "awaiting-review")
            try await approve(env, "legal-review", role: "dd-legal")
            #expect(try await env.client.describe(workflowID: "dd-1").run.stage == "ic-review")
            let ic = try #require(try await env.client.approvals(ApprovalQuery(pendingOnly: true)).first)
            let memo = try ic.request.payload.decode(as: ICMemo.self)
            #expect(memo.riskRegister.map(\.title) == ["Change-of-control clause", "Revenue concentration", "No SOC 2"])
            #expect(memo.valuationImpactPercent == -4)
            try await env.client.approve(ic.id, by: "ic-chair", role: "investment-committee")
            let output = try await env.result(of: handle, as: DueDiligenceRoom.self)
            #expect(output.findings.map(\.workstream) == DueDiligenceRoom.workstreams)
            #expect(output.findings[1].reviewedBy == "dd-legal-lead" && output.findings[1].riskScore == 20)
            #expect(output.retried.isEmpty && output.decidedBy == "ic-chair")
            #expect(try await env.client.describe(workflowID: "dd-1").run.stage == "close-preparation")
            #expect(try await calls(env, handle) == [
                "documents.create-room DD Target Co", "crm.set-deal-stage close-preparation",
                "notifications.notify DD Target Co: the IC says proceed",
            ])
        }
    }

    @Test("the IC rejects: the room is archived, the target told, the lessons recorded — in that order")
    func icRejects() async throws {
        try await withEnvironment { env, _ in
            let handle = try await env.client.start(DueDiligenceRoom.self, id: "dd-2", input: Self.input())
            try await approve(env, "legal-review", role: "dd-legal")
            let ic = try #require(try await env.client.approvals(ApprovalQuery(pendingOnly: true)).first)
            try await env.client.reject(ic.id, by: "ic-chair", role: "investment-committee", reason: "too risky")
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .compensated && run.failure?.type == "ApprovalRejected")
            #expect(try await calls(env, handle) == [
                "documents.create-room DD Target Co", "documents.archive-room due diligence ended",
                "outbound.send Due diligence closed", "crm.add-note Lessons learned: due diligence of Target Co ended",
            ])
        }
    }

    @Test("a workstream that fails for good is reported to the deal lead, who retries it; the DD then completes")
    func workstreamRetried() async throws {
        try await withEnvironment(failingCollection: "security") { env, _ in
            let handle = try await env.client.start(DueDiligenceRoom.self, id: "dd-3", input: Self.input())
            try await approve(env, "legal-review", role: "dd-legal")
            #expect(try await env.client.describe(workflowID: "dd-3").run.stage == "workstream-failed")
            #expect(try await env.client.describe(workflowID: "dd-3/security/1").run.status == .failed)
            let notices = try await calls(env, handle).filter { $0.contains("workstream failed") }
            #expect(notices == ["notifications.notify DD Target Co: the security workstream failed"])
            try await env.client.signal(workflowID: "dd-3", name: "retry-workstream", value: "legal")  // not the failed one
            try await env.runUntilIdle()
            #expect(try await env.client.describe(workflowID: "dd-3").run.stage == "workstream-failed")
            try await env.client.signal(workflowID: "dd-3", name: "retry-workstream", value: "security")
            try await env.runUntilIdle()
            #expect(try await env.client.describe(workflowID: "dd-3/security/2").run.status == .completed)
            let ic = try #require(try await env.client.approvals(ApprovalQuery(pendingOnly: true)).first)
            try await env.client.approve(ic.id, by: "ic-chair", role: "investment-committee")
            let output = try await env.result(of: handle, as: DueDiligenceRoom.self)
            #expect(output.retried == ["security"] && output.findings.count == 5)
        }
    }

    @Test("the deal lead aborts after a workstream failed (bad evidence: severity 7): compensated")
    func aborted() async throws {
        try await withEnvironment { env, _ in
            var input = Self.input()
            input.evidence["product"] = DDEvidence(
                workstream: "product", documents: [], issues: [DDIssue(title: "Roadmap", severity: 7)])
            let handle = try await env.client.start(DueDiligenceRoom.self, id: "dd-4", input: input)
            try await approve(env, "legal-review", role: "dd-legal")
            let failed = try await env.client.describe(workflowID: "dd-4/product/1").run
            #expect(failed.status == .failed && failed.failure?.description.contains("severity") == true)
            try await env.client.signal(workflowID: "dd-4", name: "abort", value: Empty())
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .compensated && run.failure?.type == "DueDiligenceAborted")
            #expect(run.stage == "aborted")
            #expect(try await calls(env, handle).suffix(3) == [
                "documents.archive-room due diligence ended", "outbound.send Due diligence closed",
                "crm.add-note Lessons learned: due diligence of Target Co ended",
            ])
        }
    }
}
