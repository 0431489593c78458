import Activities
import Foundation
import WorkflowRuntime
import Workflows

/// The demo's business part: the four business workflows on the running worker, every channel in
/// shadow mode, each approval decided by the demo itself while it prints the command an operator
/// would type.
struct BusinessDemo {
    let client: WorkflowClient
    let ledger: OutboundLedger
    let suffix = UInt16.random(in: 1000...9999)

    /// Runs the four. - Returns: whether each ended as expected.
    func run() async throws -> Bool {
        print(
            "12. the business workflows, every channel in shadow mode (worker outbox shows what would have gone out):")
        let partner = try await partnerApproval()
        let diligence = try await dueDiligence()
        let signature = try await termSheetSignature()
        let cadence = try await outreachCadence()
        return partner && diligence && signature && cadence
    }

    private func partnerApproval() async throws -> Bool {
        let id = "demo-partner-\(suffix)"
        let handle = try await client.start(
            PartnerApproval.self, id: id,
            input: .init(
                partner: Partner(
                    company: "Acme Resellers", contactName: "Pat", contactEmail: "pat@acme.example",
                    dealID: "deal-\(suffix)",
                    owner: "ada"),
                fit: FitSignals(employees: 120, yearsInBusiness: 8, referenceCustomers: 4, regionMatch: true),
                terms: PartnerTerms(revenueSharePercent: 20, paymentTermsDays: 30, territory: "APAC"),
                sender: "partners@keel.example", approvalTimeoutSeconds: 600, negotiationTimeoutSeconds: 600))
        print("   partner.approval '\(id)':")
        try await decide(handle, "manager-approval", by: "ada", role: "sales-manager")
        try await decide(handle, "legal-approval", by: "lee", role: "legal")
        try await waitForStage(id, "negotiating")
        try await signal(id, "accept")
        try await decide(handle, "executive-approval", by: "ceo", role: "executive")
        let run = try await client.waitForClose(runID: handle.runID, timeout: .seconds(30))
        print("     → \(run.status.rawValue), stage \(run.stage ?? "-")")
        return run.status == .completed && run.stage == "active"
    }

    private func dueDiligence() async throws -> Bool {
        let id = "demo-dd-\(suffix)"
        let evidence = [
            "legal": DDEvidence(
                workstream: "legal", documents: ["contracts.zip"],
                issues: [DDIssue(title: "Change-of-control clause", severity: 5, document: "contracts.zip")]),
            "financial": DDEvidence(
                workstream: "financial", documents: [], issues: [DDIssue(title: "Revenue concentration", severity: 3)]),
        ]
        let handle = try await client.start(
            DueDiligenceRoom.self, id: id,
            input: .init(
                dealID: "deal-dd-\(suffix)", target: "Target Co", targetContact: "cfo@target.example",
                dealLead: "dana", sender: "deals@keel.example", evidence: evidence, reviewTimeoutSeconds: 600))
        print("   dd.room '\(id)' (five dd.workstream children: worker list --parent \(id)):")
        try await decide(handle, "legal-review", by: "lee", role: "dd-legal", anyRun: true)
        try await decide(handle, "ic-review", by: "chair", role: "investment-committee")
        let run = try await client.waitForClose(runID: handle.runID, timeout: .seconds(30))
        print("     → \(run.status.rawValue), stage \(run.stage ?? "-")")
        return run.status == .completed && run.stage == "close-preparation"
    }

    private func termSheetSignature() async throws -> Bool {
        let id = "demo-signature-\(suffix)"
        let handle = try await client.start(
            TermSheetSignature.self, id: id,
            input: .init(
                dealID: "deal-\(suffix)", company: "Acme Resellers", title: "Partner term sheet",
                terms: "Revenue share 20%, net 30, APAC.", signers: [.init(name: "Pat", email: "pat@acme.example")],
                parties: ["ada", "role:legal"], expirySeconds: 600))
        print("   signature.term-sheet '\(id)':")
        try await decide(handle, "terms-approval", by: "lee", role: "legal")
        try await waitForStage(id, "awaiting-signature")
        let webhook = TermSheetSignature.Webhook(requestID: "shadow-\(handle.runID)-1", by: "Pat")
        print(
            "     $ worker signal \(id) signed --payload '{\"requestID\": \"\(webhook.requestID)\", \"by\": \"Pat\"}'")
        try await client.signal(workflowID: id, name: "signed", value: webhook)
        let run = try await client.waitForClose(runID: handle.runID, timeout: .seconds(30))
        print(
            "     → \(run.status.rawValue), stage \(run.stage ?? "-") (`worker evidence \(id)`: its evidence pack)"
        )
        return run.status == .completed && run.stage == "signed"
    }

    private func outreachCadence() async throws -> Bool {
        let id = "demo-cadence-\(suffix)"
        let handle = try await client.start(
            OutreachCadence.self, id: id,
            input: .init(
                lead: .init(firstName: "Sam", email: "sam-\(suffix)@prospect.example", company: "Prospect"),
                sender: "ann@keel.example", linkedInSeat: "seat-ann"))
        print("   outreach.cadence '\(id)' (the 21-day cadence; the day-1 e-mail goes at once):")
        for _ in 0..<1500 where try await ledger.outbox(runID: handle.runID).isEmpty {
            try await Task.sleep(for: .milliseconds(20))
        }
        let sent = try await ledger.outbox(runID: handle.runID)
        print("     day 1: \(sent.first.map { "\($0.channel) to \($0.recipient ?? "-") \($0.status)" } ?? "nothing")")
        try await signal(id, "reply")
        let run = try await client.waitForClose(runID: handle.runID, timeout: .seconds(30))
        print("     → \(run.status.rawValue), stage \(run.stage ?? "-")")
        return run.status == .completed && run.stage == "exited-reply"
    }

    /// Waits for the named approval of the run (or of any run, for a child's), prints the command, approves it.
    private func decide(
        _ handle: WorkflowHandle, _ name: String, by decider: String, role: String, anyRun: Bool = false
    )
        async throws
    {
        var approval: ApprovalRecord?
        for _ in 0..<1500 where approval == nil {
            approval = try await client.approvals(ApprovalQuery(pendingOnly: true, runID: anyRun ? nil : handle.runID))
                .first { $0.request.name == name && $0.workflowID.hasPrefix(handle.workflowID) }
            if approval == nil { try await Task.sleep(for: .milliseconds(20)) }
        }
        guard let approval else { throw DemoFailure("no \(name) approval appeared for \(handle.workflowID)") }
        let hash = String(approval.request.payloadHash.prefix(8))
        print(
            "     $ worker approve \(approval.id) --by \(decider) --role \(role) --hash \(hash)"
                + "   # \(approval.request.summary)"
        )
        try await client.approve(approval.id, by: decider, role: role, payloadHashPrefix: hash, origin: "demo")
    }

    private func signal(_ id: String, _ name: String) async throws {
        print("     $ worker signal \(id) \(name)")
        try await client.signal(workflowID: id, name: name, value: Empty())
    }

    private func waitForStage(_ id: String, _ stage: String) async throws {
        for _ in 0..<1500 {
            if try await client.describe(workflowID: id).run.stage == stage { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw DemoFailure("'\(id)' did not reach the stage \(stage)")
    }
}

struct DemoFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
