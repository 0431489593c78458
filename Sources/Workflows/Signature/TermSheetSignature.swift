import Activities
import Foundation
import WorkflowRuntime

/// `signature.term-sheet` (1-7 days): terms finalized → an approval bound to the exact terms
/// (their SHA-256) → signature request sent → the provider's `signed` or `declined` signal (its
/// webhook), polling the request's status as a fallback, until the expiry → recorded in the CRM →
/// the parties notified → the deal updated → the evidence pack filed as the last step.
///
/// Declined or expired: the request is voided, the parties are told, and a `renegotiate` signal
/// (payload: the new terms' text) within the renegotiation window starts a new round — a new
/// approval of the new text, a new request. No renegotiation in time ends the run `failed`
/// (`SignatureDeclined` or `SignatureExpired`); nothing is left to undo, the request was voided.
public struct TermSheetSignature: Workflow {
    public static let name = "signature.term-sheet"

    public struct Input: Codable, Sendable {
        public var dealID: String
        public var company: String
        /// The finalized terms: their title, and the exact text that is approved and signed.
        public var title: String
        public var terms: String
        public var signers: [SignatureRequest.Signer]
        /// Who hears of the outcome: people and roles (`role:legal`).
        public var parties: [String]
        /// Who approves the exact terms (default `role:legal`).
        public var approvers: [String]?
        /// How long a signature request stays open (default 7 days).
        public var expirySeconds: Double?
        /// How often the request's status is polled while no webhook came (default 6 hours).
        public var pollIntervalSeconds: Double?
        /// How long a `renegotiate` signal is awaited after a decline or expiry (default 3 days).
        public var renegotiationWindowSeconds: Double?
        /// At most this many rounds (default 3).
        public var maximumRounds: Int?

        public init(
            dealID: String, company: String, title: String, terms: String, signers: [SignatureRequest.Signer],
            parties: [String], approvers: [String]? = nil, expirySeconds: Double? = nil,
            pollIntervalSeconds: Double? = nil, renegotiationWindowSeconds: Double? = nil, maximumRounds: Int? = nil
        ) {
            self.dealID = dealID
            self.company = company
            self.title = title
            self.terms = terms
            self.signers = signers
            self.parties = parties
            self.approvers = approvers
            self.expirySeconds = expirySeconds
            self.pollIntervalSeconds = pollIntervalSeconds
            self.renegotiationWindowSeconds = renegotiationWindowSeconds
            self.maximumRounds = maximumRounds
        }
    }

    /// The `signed` / `declined` webhook's payload.
    public struct Webhook: Codable, Sendable, Hashable {
        /// The request it is about: a webhook of an earlier round's request is ignored.
        public var requestID: String
        public var by: String?
        public var reason: String?

        public init(requestID: String, by: String? = nil, reason: String? = nil) {
            self.requestID = requestID
            self.by = by
            self.reason = reason
        }
    }

    public struct Output: Codable, Sendable, Hashable {
        public var round: Int
        public var requestID: String
        /// SHA-256 of exactly what was approved and signed.
        public var termsSHA256: String
        /// How the signature came: `webhook` or `poll`.
        public var confirmedBy: String
        public var signedBy: String?
        public var evidence: AttachEvidencePack.Output
    }

    /// What the approver sees and the decision binds to.
    public struct TermsForApproval: Codable, Sendable, Hashable {
        public var title: String
        public var text: String
        public var sha256: String
        public var round: Int
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> Output {
        guard !input.signers.isEmpty else {
            throw InvalidValueError(name: "signers", value: "[]", requirement: "at least one signer")
        }
        let expiry = try Duration.checked(
            seconds: input.expirySeconds ?? 7 * 86_400, "expirySeconds", allowsZero: false)
        let poll = try Duration.checked(
            seconds: input.pollIntervalSeconds ?? 6 * 3600, "pollIntervalSeconds", allowsZero: false)
        let window = try Duration.checked(
            seconds: input.renegotiationWindowSeconds ?? 3 * 86_400, "renegotiationWindowSeconds", allowsZero: false)
        let maximumRounds = min(max(input.maximumRounds ?? 3, 1), 20)
        try await context.upsertSearchAttributes([
            "dealID": .string(input.dealID), "partner": .string(input.company),
        ])
        var terms = input.terms
        for round in 1...maximumRounds {
            let sheet = TermSheet(version: round, text: terms)
            try await context.setStage("approval")
            let approval = try await context.requestApproval(
                "terms-approval",
                summary: "\(input.title) v\(round) for \(input.company) (SHA-256 \(sheet.sha256.prefix(12)))",
                payload: TermsForApproval(title: input.title, text: terms, sha256: sheet.sha256, round: round),
                approvers: input.approvers ?? ["role:legal"], timeout: expiry)
            guard approval.isApproved else {
                try await context.setStage("rejected")
                throw BusinessOutcome.notApproved("the terms approval", approval)
            }

            try await context.setStage("awaiting-signature")
            let request = try await context.execute(
                CreateSignatureRequest.self,
                SignatureRequest(
                    documentName: "\(input.title) v\(round)", documentSHA256: sheet.sha256, signers: input.signers,
                    expiresAt: context.now.addingTimeInterval(expiry.seconds), message: "Please sign."))
            let requestID = request.providerID ?? "shadow-\(context.info.runID)-\(round)"
            let outcome = try await awaitSignature(context, requestID: requestID, expiry: expiry, poll: poll)
            if case .signed(let by, let via) = outcome {
                try await context.setStage("recording")
                _ = try await context.execute(
                    AddCRMNote.self,
                    CRMNote(dealID: input.dealID, text: "\(input.title) v\(round) signed; SHA-256 \(sheet.sha256)"))
                _ = try await context.execute(
                    NotifyTeam.self,
                    TeamNotification(
                        recipients: input.parties, subject: "\(input.company) signed \(input.title)",
                        body: "Signed by \(by ?? "the signers"); SHA-256 \(sheet.sha256)"))
                _ = try await context.execute(
                    SetCRMDealStage.self, DealStageChange(dealID: input.dealID, stage: "signed"))
                try await context.setStage("signed")
                let evidence = try await context.execute(AttachEvidencePack.self, .init(roomID: input.dealID))
                return Output(
                    round: round, requestID: requestID, termsSHA256: sheet.sha256, confirmedBy: via, signedBy: by,
                    evidence: evidence)
            }

            // Declined or expired: void, tell the parties, and wait for a renegotiation.
            let reason = outcome.reason
            _ = try await context.execute(
                VoidSignatureRequest.self, SignatureVoid(requestID: requestID, reason: reason))
            _ = try await context.execute(
                NotifyTeam.self,
                TeamNotification(
                    recipients: input.parties, subject: "\(input.title) for \(input.company): \(reason)",
                    body: "The signature request was voided. Send `renegotiate` with new terms within \(window)."))
            try await context.setStage("renegotiation")
            guard round < maximumRounds,
                let next = try await context.waitForSignal("renegotiate", as: String.self, timeout: window),
                !next.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            else {
                try await context.setStage(outcome.isDecline ? "declined" : "expired")
                throw BusinessOutcome.ended(
                    outcome.isDecline ? "SignatureDeclined" : "SignatureExpired",
                    "\(input.title) for \(input.company) was \(reason) and not renegotiated")
            }
            terms = next
        }
        throw BusinessOutcome.ended("SignatureRoundsExhausted", "no signature after \(maximumRounds) rounds")
    }

    private enum Outcome {
        case signed(by: String?, via: String)
        case declined(reason: String?)
        case expired

        var isDecline: Bool { if case .declined = self { true } else { false } }

        var reason: String {
            switch self {
            case .signed: "signed"
            case .declined(let reason): "declined" + (reason.map { " (\($0))" } ?? "")
            case .expired: "expired"
            }
        }
    }

    /// Waits for the request's webhook, polling its status every `poll`, until `expiry` passes.
    private func awaitSignature(_ context: WorkflowContext, requestID: String, expiry: Duration, poll: Duration)
        async throws -> Outcome
    {
        let deadline = context.now.addingTimeInterval(expiry.seconds)
        while true {
            let remaining = deadline.timeIntervalSince(context.now)
            if remaining <= 0 { return .expired }
            let wait = Duration.milliseconds(Int64(min(poll.seconds, remaining) * 1000))
            if let signal = try await context.waitForSignal(anyOf: ["signed", "declined"], timeout: wait) {
                guard let webhook = try? signal.decode(as: Webhook.self), webhook.requestID == requestID else {
                    continue  // an earlier round's request, or a malformed webhook: not this request's answer
                }
                return signal.name == "signed"
                    ? .signed(by: webhook.by, via: "webhook") : .declined(reason: webhook.reason)
            }
            switch try await context.execute(SignatureRequestStatus.self, requestID) {
            case .signed: return .signed(by: nil, via: "poll")
            case .declined: return .declined(reason: nil)
            case .expired, .voided: return .expired
            case .pending: continue
            }
        }
    }
}
