import Activities
import Foundation
import WorkflowRuntime

/// `partner.approval` (1-14 days): fit score → manager approval → term sheet → legal review →
/// terms sent → negotiation by signals → executive approval → activation.
///
/// Each approval that expires escalates once (to ``Input/escalationRole``), then counts as a
/// rejection. A rejection, the partner's decline or the negotiation deadline ends it: the
/// compensations run in reverse — retract the term sheet (if it was sent), notify the partner,
/// close the CRM deal as lost — and the run closes `compensated`. Signals during negotiation:
/// `counter-offer` (``PartnerTerms``: a new term-sheet version, sent to the partner), `accept`,
/// `decline` (payload: a reason string, or `{}`).
public struct PartnerApproval: Workflow {
    public static let name = "partner.approval"

    public struct Input: Codable, Sendable {
        public var partner: Partner
        public var fit: FitSignals
        public var terms: PartnerTerms
        /// Who the e-mails to the partner come from.
        public var sender: String
        /// Below this fit score the partner is not pursued (default 60).
        public var minimumFitScore: Int?
        /// Each approval's deadline (default 2 days); an escalated request gets the same again.
        public var approvalTimeoutSeconds: Double?
        /// How long the partner has to accept, counted from when the terms were sent (default 7 days).
        public var negotiationTimeoutSeconds: Double?
        /// Who decides an approval that expired (default `role:sales-director`).
        public var escalationRole: String?

        public init(
            partner: Partner, fit: FitSignals, terms: PartnerTerms, sender: String, minimumFitScore: Int? = nil,
            approvalTimeoutSeconds: Double? = nil, negotiationTimeoutSeconds: Double? = nil,
            escalationRole: String? = nil
        ) {
            self.partner = partner
            self.fit = fit
            self.terms = terms
            self.sender = sender
            self.minimumFitScore = minimumFitScore
            self.approvalTimeoutSeconds = approvalTimeoutSeconds
            self.negotiationTimeoutSeconds = negotiationTimeoutSeconds
            self.escalationRole = escalationRole
        }
    }

    public struct Output: Codable, Sendable, Hashable {
        public var fitScore: Int
        /// The term sheet the partner accepted and the executive approved.
        public var termSheet: TermSheet
        /// How many counter-offers the negotiation took.
        public var counterOffers: Int
        /// Who approved each step (`manager`, `legal`, `executive`), escalations included.
        public var approvedBy: [String: String]
    }

    /// The stages, in order (`worker list --stage negotiating`).
    public enum Stage: String, CaseIterable, Sendable {
        case scoring, managerApproval = "manager-approval", drafting, legalReview = "legal-review"
        case termsSent = "terms-sent", negotiating, executiveApproval = "executive-approval", activating, active
        case rejected, declined, expired
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> Output {
        try input.terms.validate()
        let approvalTimeout = try Duration.checked(
            seconds: input.approvalTimeoutSeconds ?? 2 * 86_400, "approvalTimeoutSeconds", allowsZero: false)
        let negotiationTimeout = try Duration.checked(
            seconds: input.negotiationTimeoutSeconds ?? 7 * 86_400, "negotiationTimeoutSeconds", allowsZero: false)
        let escalation = [input.escalationRole ?? "role:sales-director"]
        let partner = input.partner
        try await context.upsertSearchAttributes([
            "partner": .string(partner.company), "dealID": .string(partner.dealID), "owner": .string(partner.owner),
        ])
        let flow = Flow(context: context, input: input)

        // Registered first, so they run last: whatever ends the approval, the CRM deal is closed
        // as lost and the partner hears of it.
        try context.addCompensation(
            SetCRMDealStage.self,
            DealStageChange(dealID: partner.dealID, stage: "closed-lost", reason: "partner approval ended"))
        try context.addCompensation(
            SendMessage.self, flow.email("Your partnership application", Self.closingNote(partner)))

        try await flow.stage(.scoring)
        _ = try await context.execute(
            SetCRMDealStage.self, DealStageChange(dealID: partner.dealID, stage: "partner-review"))
        let fitScore = try await context.execute(ScorePartnerFit.self, input.fit)
        let minimum = input.minimumFitScore ?? 60
        guard fitScore >= minimum else {
            try await flow.stage(.rejected)
            throw BusinessOutcome.ended(
                "FitTooLow", "\(partner.company) scored \(fitScore), below the minimum of \(minimum)")
        }

        var approvedBy: [String: String] = [:]
        func approve<P: Encodable & Sendable>(
            _ step: String, _ stage: Stage, approvers: [String], summary: String, payload: P
        ) async throws {
            try await flow.stage(stage)
            let approval = EscalatingApproval(
                name: "\(step)-approval", approvers: approvers, escalateTo: escalation, timeout: approvalTimeout)
            let result = try await approval.decide(context, summary: summary, payload: payload)
            guard result.isApproved else {
                try await flow.stage(result.decision.outcome == .expired ? .expired : .rejected)
                throw BusinessOutcome.notApproved("the \(step) approval", result)
            }
            approvedBy[step] = result.decision.decidedBy ?? "-"
        }

        try await approve(
            "manager", .managerApproval, approvers: ["role:sales-manager"],
            summary: "Partner \(partner.company): fit \(fitScore)/100, \(input.terms.territory)",
            payload: ManagerReview(partner: partner, fitScore: fitScore, terms: input.terms))

        try await flow.stage(.drafting)
        var sheet = try await context.execute(
            DraftTermSheet.self, .init(partner: partner, terms: input.terms, version: 1))
        try await approve(
            "legal", .legalReview, approvers: ["role:legal"],
            summary: "Term sheet v1 for \(partner.company) (SHA-256 \(sheet.sha256.prefix(12)))", payload: sheet)

        try await flow.stage(.termsSent)
        // Registered before the send: a send whose outcome is unknown is retracted too.
        try context.addCompensation(
            SendMessage.self, flow.email("Term sheet withdrawn", "The term sheet we sent is withdrawn."))
        _ = try await context.execute(SendMessage.self, flow.email("Your partner term sheet", sheet.text))

        try await flow.stage(.negotiating)
        let deadline = context.now.addingTimeInterval(negotiationTimeout.seconds)
        var counterOffers = 0
        negotiation: while true {
            let remaining = deadline.timeIntervalSince(context.now)
            guard remaining > 0,
                let signal = try await context.waitForSignal(
                    anyOf: ["counter-offer", "accept", "decline"], timeout: .milliseconds(Int64(remaining * 1000)))
            else {
                try await flow.stage(.expired)
                throw BusinessOutcome.ended(
                    "NegotiationExpired", "\(partner.company) did not accept within \(negotiationTimeout)")
            }
            switch signal.name {
            case "accept":
                break negotiation
            case "decline":
                try await flow.stage(.declined)
                let reason = (try? signal.decode(as: String.self)).map { ": \($0)" } ?? ""
                throw BusinessOutcome.ended("PartnerDeclined", "\(partner.company) declined the terms\(reason)")
            default:
                guard let terms = try? signal.decode(as: PartnerTerms.self), (try? terms.validate()) != nil else {
                    continue  // a malformed counter-offer is ignored: the partner is asked to send it again
                }
                counterOffers += 1
                sheet = try await context.execute(
                    DraftTermSheet.self, .init(partner: partner, terms: terms, version: sheet.version + 1))
                _ = try await context.execute(
                    SendMessage.self, flow.email("Revised term sheet v\(sheet.version)", sheet.text))
            }
        }

        try await approve(
            "executive", .executiveApproval, approvers: ["role:executive"],
            summary: "Activate \(partner.company) on term sheet v\(sheet.version) (\(counterOffers) counter-offers)",
            payload: sheet)

        try await flow.stage(.activating)
        _ = try await context.execute(
            SetCRMDealStage.self, DealStageChange(dealID: partner.dealID, stage: "closed-won"))
        _ = try await context.execute(
            NotifyTeam.self,
            TeamNotification(
                recipients: [partner.owner, "role:partner-ops"], subject: "Partner \(partner.company) is active",
                body: "Term sheet v\(sheet.version), SHA-256 \(sheet.sha256)"))
        _ = try await context.execute(
            SendMessage.self, flow.email("Welcome aboard", "Welcome, \(partner.company): your partnership is active."))
        try await flow.stage(.active)
        return Output(fitScore: fitScore, termSheet: sheet, counterOffers: counterOffers, approvedBy: approvedBy)
    }

    static func closingNote(_ partner: Partner) -> String {
        "Dear \(partner.contactName), we will not go ahead with the partnership with \(partner.company) for now."
    }

    /// What the manager sees.
    struct ManagerReview: Codable, Sendable {
        var partner: Partner
        var fitScore: Int
        var terms: PartnerTerms
    }

    /// The run's helpers: its stage, and the e-mails to the partner.
    private struct Flow {
        let context: WorkflowContext
        let input: Input

        func stage(_ stage: Stage) async throws {
            try await context.setStage(stage.rawValue)
        }

        func email(_ subject: String, _ body: String) -> OutboundMessage {
            OutboundMessage(
                channel: .email, from: input.sender, to: input.partner.contactEmail, subject: subject, body: body,
                template: "partner-approval")
        }
    }
}
