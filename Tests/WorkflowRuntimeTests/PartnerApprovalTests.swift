import Activities
import Foundation
import Testing
import WorkflowRuntime
import WorkflowTesting
import Workflows

@Suite("Partner approval: every path, its compensations in reverse, escalation, stages")
struct PartnerApprovalTests {
    static let partner = Partner(
        company: "Acme Resellers", contactName: "Pat", contactEmail: "pat@acme-resellers.example", dealID: "deal-42",
        owner: "ada@keel.example")
    static let terms = PartnerTerms(revenueSharePercent: 20, paymentTermsDays: 30, territory: "APAC")

    static func input(fit: FitSignals = FitSignals(employees: 120, yearsInBusiness: 8, referenceCustomers: 4, regionMatch: true))
        -> PartnerApproval.Input
    {
        PartnerApproval.Input(partner: partner, fit: fit, terms: terms, sender: "partners@keel.example")
    }

    func withEnvironment(
        _ backend: StoreBackend = .sqlite, _ body: (TestWorkflowEnvironment, OutboundLedger) async throws -> Void
    ) async throws {
        try await backend.withStore { store in
            let database = WorkflowDatabase(store: store)
            let gateway = try OutboundGateway(database: database, configuration: .shadow)
            var registry = WorkflowRegistry()
            try registry.registerBusinessWorkflows(database: database, gateway: gateway)
            registry.registerOutboundActivities(gateway: gateway)
            let env = TestWorkflowEnvironment(registry: registry, store: store)
            defer { env.shutdown() }
            try await body(env, gateway.ledger)
        }
    }

    /// The run's only pending approval, once the run has done all it can.
    func pending(_ env: TestWorkflowEnvironment, _ handle: WorkflowHandle) async throws -> ApprovalRecord {
        try await env.runUntilIdle()
        let pending = try await env.client.approvals(ApprovalQuery(pendingOnly: true, runID: handle.runID))
        try #require(pending.count == 1, "expected one pending approval, found \(pending.map(\.request.name))")
        return pending[0]
    }

    func approve(_ env: TestWorkflowEnvironment, _ handle: WorkflowHandle, _ name: String, role: String) async throws {
        let approval = try await pending(env, handle)
        #expect(approval.request.name == name)
        #expect(approval.request.approvers == ["role:\(role)"])
        try await env.client.approve(approval.id, by: "\(role)-lead", role: role)
    }

    /// What the run did at the providers, in the order its history scheduled it (compensations
    /// included): `channel detail`, each call checked to be in the outbox exactly once.
    func calls(_ env: TestWorkflowEnvironment, _ ledger: OutboundLedger, _ handle: WorkflowHandle) async throws
        -> [String]
    {
        let outbox = try await ledger.outbox(runID: handle.runID, limit: 1000)
        var calls: [String] = []
        for event in try await env.store.history(runID: handle.runID) {
            guard case .activityScheduled(_, let activity, let input, let key, _) = event.kind,
                activity.hasPrefix("outbound.") || activity.hasPrefix("crm.") || activity.hasPrefix("notifications.")
            else { continue }
            #expect(outbox.filter { $0.idempotencyKey == key }.count == 1, "\(activity) \(key) is not in the outbox once")
            let fields = try JSONSerialization.jsonObject(with: input.data) as? [String: Any]
            let detail = (fields?["subject"] as? String) ?? (fields?["stage"] as? String)
                ?? (fields?["recipients"] as? [String])?.joined(separator: ",") ?? ""
            let channel = activity == SendMessage.name
                ? (fields?["channel"] as? String ?? "?") : String(activity.split(separator: ".")[0])
            calls.append("\(channel) \(detail)")
        }
        #expect(outbox.count == calls.count)
        return calls
    }

    func stage(_ env: TestWorkflowEnvironment, _ id: String) async throws -> String? {
        try await env.client.describe(workflowID: id).run.stage
    }

    @Test("happy path: scored, approved three times, negotiated with a counter-offer, activated", arguments: StoreBackend.allCases)
    func happyPath(backend: StoreBackend) async throws {
        try await withEnvironment(backend) { env, ledger in
            let handle = try await env.client.start(PartnerApproval.self, id: "partner-acme", input: Self.input())
            try await approve(env, handle, "manager-approval", role: "sales-manager")
            try await approve(env, handle, "legal-approval", role: "legal")
            try await env.runUntilIdle()
            #expect(try await stage(env, "partner-acme") == "negotiating")
            let negotiating = try await env.client.list(RunQuery(stage: "negotiating"))
            #expect(negotiating.map(\.workflowID) == ["partner-acme"])
            let byPartner = try await env.client.list(RunQuery(searchAttributes: ["partner": .string("Acme Resellers")]))
            #expect(byPartner.count == 1)

            let counter = PartnerTerms(revenueSharePercent: 25, paymentTermsDays: 45, territory: "APAC", note: "needs 25%")
            try await env.client.signal(workflowID: "partner-acme", name: "counter-offer", value: counter)
            try await env.runUntilIdle()
            try await env.client.signal(workflowID: "partner-acme", name: "accept", value: Empty())
            let executive = try await pending(env, handle)
            #expect(executive.request.summary.contains("term sheet v2"))
            try await env.client.approve(executive.id, by: "ceo", role: "executive")
            let output = try await env.result(of: handle, as: PartnerApproval.self)

            #expect(output.fitScore == 18 + 16 + 24 + 20)
            #expect(output.termSheet.version == 2 && output.termSheet.text.contains("Revenue share: 25%"))
            #expect(output.counterOffers == 1)
            #expect(output.approvedBy == ["manager": "sales-manager-lead", "legal": "legal-lead", "executive": "ceo"])
            #expect(try await stage(env, "partner-acme") == "active")
            #expect(try await calls(env, ledger, handle) == [
                "crm partner-review", "email Your partner term sheet", "email Revised term sheet v2", "crm closed-won",
                "notifications Partner Acme Resellers is active", "email Welcome aboard",
            ])
        }
    }

    @Test("a rejection at each approval compensates in reverse: retract the sent term sheet, tell the partner, close the deal lost",
          arguments: ["manager", "legal", "executive"])
    func rejected(at step: String) async throws {
        try await withEnvironment { env, ledger in
            let handle = try await env.client.start(PartnerApproval.self, id: "partner-\(step)", input: Self.input())
            let roles = ["manager": "sales-manager", "legal": "legal", "executive": "executive"]
            for earlier in ["manager", "legal"].prefix(while: { $0 != step }) {
                try await approve(env, handle, "\(earlier)-approval", role: roles[earlier]!)
            }
            if step == "executive" {
                try await env.runUntilIdle()
                try await env.client.signal(workflowID: "partner-\(step)", name: "accept", value: Empty())
            }
            let approval = try await pending(env, handle)
            try await env.client.reject(approval.id, by: "boss", role: roles[step]!, reason: "not now")
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .compensated)
            #expect(run.failure?.type == "ApprovalRejected" && run.failure?.message.contains("not now") == true)
            #expect(run.stage == "rejected")
            let sent = step == "executive" ? ["email Your partner term sheet", "email Term sheet withdrawn"] : []
            #expect(try await calls(env, ledger, handle) == ["crm partner-review"] + sent + [
                "email Your partnership application", "crm closed-lost",
            ])
        }
    }

    @Test("the partner's decline, or no answer before the negotiation deadline, compensates the same way",
          arguments: ["decline", "expiry"])
    func declinedOrExpired(how: String) async throws {
        try await withEnvironment { env, ledger in
            let handle = try await env.client.start(PartnerApproval.self, id: "partner-\(how)", input: Self.input())
            try await approve(env, handle, "manager-approval", role: "sales-manager")
            try await approve(env, handle, "legal-approval", role: "legal")
            try await env.runUntilIdle()
            if how == "decline" {
                try await env.client.signal(workflowID: "partner-\(how)", name: "decline", value: "went with a competitor")
            } else {
                try await env.advance(by: .seconds(6 * 86_400))
                #expect(try await stage(env, "partner-\(how)") == "negotiating")
                try await env.advance(by: .seconds(86_400 + 1))
            }
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .compensated)
            #expect(run.failure?.type == (how == "decline" ? "PartnerDeclined" : "NegotiationExpired"))
            #expect(run.stage == (how == "decline" ? "declined" : "expired"))
            #expect(try await calls(env, ledger, handle) == [
                "crm partner-review", "email Your partner term sheet", "email Term sheet withdrawn",
                "email Your partnership application", "crm closed-lost",
            ])
        }
    }

    @Test("an approval that expires escalates once to the configured role; an escalation that expires counts as a rejection")
    func escalation() async throws {
        try await withEnvironment { env, _ in
            let handle = try await env.client.start(PartnerApproval.self, id: "partner-slow", input: Self.input())
            _ = try await pending(env, handle)
            try await env.advance(by: .seconds(2 * 86_400 + 1))
            let escalated = try await pending(env, handle)
            #expect(escalated.request.name == "manager-approval-escalated")
            #expect(escalated.request.approvers == ["role:sales-director"])
            #expect(escalated.request.summary.hasPrefix("Escalated"))
            try await env.client.approve(escalated.id, by: "dir", role: "sales-director")
            let legal = try await pending(env, handle)
            #expect(legal.request.name == "legal-approval")

            try await env.advance(by: .seconds(2 * 86_400 + 1))
            _ = try await pending(env, handle)  // legal's escalation, left to expire too
            try await env.advance(by: .seconds(2 * 86_400 + 1))
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .compensated)
            #expect(run.failure?.type == "ApprovalExpired")
            #expect(run.failure?.message.contains("after escalation") == true)
            #expect(run.stage == "expired")
        }
    }

    @Test("a partner below the minimum fit score is not pursued: the deal is closed lost and the partner told")
    func fitTooLow() async throws {
        try await withEnvironment { env, ledger in
            let weak = FitSignals(employees: 3, yearsInBusiness: 1, referenceCustomers: 0, regionMatch: false)
            let handle = try await env.client.start(PartnerApproval.self, id: "partner-weak", input: Self.input(fit: weak))
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .compensated && run.failure?.type == "FitTooLow")
            #expect(try await env.client.approvals(ApprovalQuery(runID: handle.runID)).isEmpty)
            #expect(try await calls(env, ledger, handle) == [
                "crm partner-review", "email Your partnership application", "crm closed-lost",
            ])
        }
    }

    @Test("the evidence pack of a compensated run: its history, approvals with who and from where, provider calls; a single changed byte anywhere is refused")
    func evidencePack() async throws {
        try await withEnvironment { env, ledger in
            let handle = try await env.client.start(PartnerApproval.self, id: "partner-evidence", input: Self.input())
            try await approve(env, handle, "manager-approval", role: "sales-manager")
            let legal = try await pending(env, handle)
            try await env.client.reject(legal.id, by: "lee", role: "legal", reason: "clause 4", origin: "cli@host-7")
            _ = try await env.waitForClose(runID: handle.runID)

            let pack = try await EvidencePack.export(workflowID: "partner-evidence", client: env.client, ledger: ledger)
            #expect(pack.runID == handle.runID)
            let kinds = pack.records.map(\.kind)
            #expect(kinds.first == "run" && kinds.filter { $0 == "approval" }.count == 2)
            #expect(kinds.filter { $0 == "providerCall" }.count == 3)
            #expect(pack.records.contains { $0.summary.contains("compensationStarted") })
            let rejected = try #require(pack.records.first { $0.summary.hasPrefix("legal-approval rejected") })
            #expect(rejected.summary.contains("sha256=\(legal.request.payloadHash)"))
            let text = String(decoding: try pack.encoded(), as: UTF8.self)
            #expect(text.contains("cli@host-7") && text.contains("clause 4"))

            let data = try pack.encoded()
            #expect(try EvidencePack.verify(data) == pack)
            // Flip one byte at many places: every change is caught, most by the record it lands in.
            var caughtInRecord = 0
            for offset in stride(from: 0, to: data.count, by: max(1, data.count / 400)) {
                var changed = data
                changed[offset] = changed[offset] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
                do {
                    try EvidencePack.verify(changed)
                    Issue.record("a change at byte \(offset) of \(data.count) was not caught")
                } catch let error as EvidenceError {
                    if error.description.hasPrefix("record ") { caughtInRecord += 1 }
                }
            }
            #expect(caughtInRecord > 100)
        }
    }

    @Test("bad terms (a 1e308 revenue share) fail the run at once, naming the field, before anything is sent")
    func badTerms() async throws {
        try await withEnvironment { env, ledger in
            var input = Self.input()
            input.terms.revenueSharePercent = 1e308
            let handle = try await env.client.start(PartnerApproval.self, id: "partner-nan", input: input)
            let run = try await env.waitForClose(runID: handle.runID)
            #expect(run.status == .failed)
            #expect(run.failure?.message.contains("revenueSharePercent") == true)
            #expect(try await ledger.outbox(runID: handle.runID).isEmpty)
        }
    }
}
