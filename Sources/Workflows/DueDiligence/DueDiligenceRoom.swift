import Activities
import Foundation
import WorkflowRuntime

/// `dd.workstream`: one workstream of a due diligence, as a child workflow: collect → analyze →
/// (a reviewer's approval when the analysis needs one) → findings.
public struct DDWorkstream: Workflow {
    public static let name = "dd.workstream"

    public struct Input: Codable, Sendable {
        public var dealID: String
        public var evidence: DDEvidence
        /// Who reviews a risky analysis (default `role:dd-WORKSTREAM`).
        public var reviewer: String?
        public var reviewTimeoutSeconds: Double?

        public init(dealID: String, evidence: DDEvidence, reviewer: String? = nil, reviewTimeoutSeconds: Double? = nil)
        {
            self.dealID = dealID
            self.evidence = evidence
            self.reviewer = reviewer
            self.reviewTimeoutSeconds = reviewTimeoutSeconds
        }
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> DDFindings {
        let name = input.evidence.workstream
        let timeout = try Duration.checked(
            seconds: input.reviewTimeoutSeconds ?? 3 * 86_400, "reviewTimeoutSeconds", allowsZero: false)
        let retry = ActivityOptions(retryPolicy: RetryPolicy(initialInterval: .seconds(1), maximumAttempts: 3))
        try await context.setStage("collecting")
        let evidence = try await context.execute(CollectDDEvidence.self, input.evidence, options: retry)
        try await context.setStage("analyzing")
        let analysis = try await context.execute(AnalyzeDDEvidence.self, evidence, options: retry)
        var reviewedBy: String?
        if analysis.needsReview {
            try await context.setStage("awaiting-review")
            let decision = try await context.requestApproval(
                "\(name)-review", summary: "\(name) risk \(analysis.riskScore)/100 for deal \(input.dealID)",
                payload: analysis, approvers: [input.reviewer ?? "role:dd-\(name)"], timeout: timeout)
            guard decision.isApproved else {
                throw BusinessOutcome.ended(
                    "ReviewNotApproved",
                    "the \(name) review was \(decision.outcome.rawValue)"
                        + (decision.note.map { ": \($0)" } ?? ""))
            }
            reviewedBy = decision.decidedBy
        }
        try await context.setStage("findings")
        let worstFirst = analysis.issues.sorted { ($0.severity, $1.title) > ($1.severity, $0.title) }
        return DDFindings(workstream: name, riskScore: analysis.riskScore, issues: worstFirst, reviewedBy: reviewedBy)
    }
}

/// `dd.room` (2-8 weeks): the data room is created; the five workstreams (financial, legal,
/// technical, product, security) run as child workflows at once; their findings are consolidated
/// into a risk register, a valuation impact and an IC memo; the IC reviews the memo (an approval
/// whose payload is the memo); proceed → close preparation.
///
/// A workstream that fails for good is reported to the deal lead, who signals
/// `retry-workstream` (payload: its name) to run it again, or `abort`. An IC rejection (or
/// expiry) or an abort compensates in reverse: archive the room, notify the target, record the
/// lessons learned; the run closes `compensated`.
public struct DueDiligenceRoom: Workflow {
    public static let name = "dd.room"

    public static let workstreams = ["financial", "legal", "technical", "product", "security"]

    public struct Input: Codable, Sendable {
        public var dealID: String
        public var target: String
        /// Who at the target hears of the outcome (an e-mail address).
        public var targetContact: String
        /// Who runs the deal: hears of failed workstreams, decides retry or abort.
        public var dealLead: String
        public var sender: String
        /// Each workstream's evidence, by name; a workstream not given starts with none.
        public var evidence: [String: DDEvidence]
        /// Who decides the IC review (default `role:investment-committee`).
        public var icApprovers: [String]?
        public var reviewTimeoutSeconds: Double?
        /// How long the deal lead has to answer a failed workstream (default 7 days; then abort).
        public var decisionTimeoutSeconds: Double?

        public init(
            dealID: String, target: String, targetContact: String, dealLead: String, sender: String,
            evidence: [String: DDEvidence], icApprovers: [String]? = nil, reviewTimeoutSeconds: Double? = nil,
            decisionTimeoutSeconds: Double? = nil
        ) {
            self.dealID = dealID
            self.target = target
            self.targetContact = targetContact
            self.dealLead = dealLead
            self.sender = sender
            self.evidence = evidence
            self.icApprovers = icApprovers
            self.reviewTimeoutSeconds = reviewTimeoutSeconds
            self.decisionTimeoutSeconds = decisionTimeoutSeconds
        }
    }

    public struct Output: Codable, Sendable, Hashable {
        public var roomID: String
        public var memo: ICMemo
        public var findings: [DDFindings]
        /// Workstreams the deal lead had retried.
        public var retried: [String]
        public var decidedBy: String?
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> Output {
        let decisionTimeout = try Duration.checked(
            seconds: input.decisionTimeoutSeconds ?? 7 * 86_400, "decisionTimeoutSeconds", allowsZero: false)
        let reviewTimeout = try Duration.checked(
            seconds: input.reviewTimeoutSeconds ?? 3 * 86_400, "reviewTimeoutSeconds", allowsZero: false)
        if let unknown = input.evidence.keys.sorted().first(where: { !Self.workstreams.contains($0) }) {
            throw InvalidValueError(
                name: "evidence", value: unknown, requirement: "one of \(Self.workstreams.joined(separator: ", "))")
        }
        try await context.upsertSearchAttributes(["dealID": .string(input.dealID), "target": .string(input.target)])

        // Registered first, so they run last: the lessons learned, then the target told.
        try context.addCompensation(
            AddCRMNote.self,
            CRMNote(dealID: input.dealID, text: "Lessons learned: due diligence of \(input.target) ended"))
        try context.addCompensation(
            SendMessage.self,
            OutboundMessage(
                channel: .email, from: input.sender, to: input.targetContact, subject: "Due diligence closed",
                body: "We have closed the due diligence of \(input.target) and the data room.", template: "dd-closed"))
        try await context.setStage("opening")
        let room = try await context.execute(
            CreateDataRoom.self,
            DataRoom(name: "DD \(input.target)", dealID: input.dealID, members: [input.dealLead, input.targetContact]))
        let roomID = room.providerID ?? "room-\(input.dealID)"
        try context.addCompensation(ArchiveDataRoom.self, RoomArchive(roomID: roomID, reason: "due diligence ended"))

        try await context.setStage("workstreams")
        // A workstream's failure is an outcome to report; anything else (a cancellation) ends the run.
        let runWorkstream: @Sendable (String, Int) async throws -> Result<DDFindings, ChildWorkflowFailure> = {
            name, round in
            let evidence = input.evidence[name] ?? DDEvidence(workstream: name, documents: [], issues: [])
            do {
                return .success(
                    try await context.executeChild(
                        DDWorkstream.self, id: "\(context.info.workflowID)/\(name)/\(round)",
                        input: .init(
                            dealID: input.dealID, evidence: evidence, reviewTimeoutSeconds: reviewTimeout.seconds)))
            } catch let failure as ChildWorkflowFailure {
                return .failure(failure)
            }
        }
        var findings: [String: DDFindings] = [:]
        var retried: [String] = []
        var pending = Self.workstreams.map { ($0, 1) }
        while !pending.isEmpty {
            let outcomes = try await context.parallel(pending) { name, round in
                (name, round, try await runWorkstream(name, round))
            }
            pending = []
            for (name, round, outcome) in outcomes {
                switch outcome {
                case .success(let result):
                    findings[name] = result
                case .failure(let failure):
                    _ = try await context.execute(
                        NotifyTeam.self,
                        TeamNotification(
                            recipients: [input.dealLead], subject: "DD \(input.target): the \(name) workstream failed",
                            body: "\(failure.cause). Signal retry-workstream \"\(name)\" or abort."))
                    try await context.setStage("workstream-failed")
                    guard try await awaitRetry(context, of: name, timeout: decisionTimeout) else {
                        try await context.setStage("aborted")
                        throw BusinessOutcome.ended(
                            "DueDiligenceAborted",
                            "the due diligence of \(input.target) was aborted after the \(name) "
                                + "workstream failed: \(failure.cause)")
                    }
                    retried.append(name)
                    pending.append((name, round + 1))
                }
            }
            if !pending.isEmpty { try await context.setStage("workstreams") }
        }

        try await context.setStage("consolidation")
        let ordered = Self.workstreams.compactMap { findings[$0] }
        let memo = try await context.execute(
            DraftICMemo.self, .init(dealID: input.dealID, target: input.target, findings: ordered))
        try await context.setStage("ic-review")
        let summary =
            "IC: \(input.target), valuation impact \(memo.valuationImpactPercent)% (\(memo.riskRegister.count) risks)"
        let decision = try await context.requestApproval(
            "ic-review", summary: summary, payload: memo, approvers: input.icApprovers ?? ["role:investment-committee"],
            timeout: reviewTimeout)
        guard decision.isApproved else {
            try await context.setStage("rejected")
            throw BusinessOutcome.notApproved("the IC review", decision)
        }
        try await context.setStage("close-preparation")
        _ = try await context.execute(
            SetCRMDealStage.self, DealStageChange(dealID: input.dealID, stage: "close-preparation"))
        _ = try await context.execute(
            NotifyTeam.self,
            TeamNotification(
                recipients: [input.dealLead], subject: "DD \(input.target): the IC says proceed",
                body: "Close preparation starts. IC memo SHA-256 \(memo.sha256)"))
        return Output(roomID: roomID, memo: memo, findings: ordered, retried: retried, decidedBy: decision.decidedBy)
    }

    /// Waits for the deal lead's `retry-workstream NAME` (true) or `abort` (false), at most `timeout`.
    private func awaitRetry(_ context: WorkflowContext, of name: String, timeout: Duration) async throws -> Bool {
        let deadline = context.now.addingTimeInterval(timeout.seconds)
        while true {
            let remaining = deadline.timeIntervalSince(context.now)
            guard remaining > 0,
                let signal = try await context.waitForSignal(
                    anyOf: ["retry-workstream", "abort"], timeout: .milliseconds(Int64(remaining * 1000)))
            else { return false }
            if signal.name == "abort" { return false }
            if (try? signal.decode(as: String.self)) == name { return true }
        }
    }
}
