import Activities
import Foundation
import WorkflowRuntime

/// `outreach.cadence` (21 days by default): follows a cadence document (``CadenceDocument``, read
/// once at the start — a later version changes nothing for this run) for one lead: each step's
/// message on its day, LinkedIn steps only when their conditions hold, closing on the document's
/// close day.
///
/// Signals: `reply`, `unsubscribe`, `bounce` end it at once (an unsubscribe or a bounce also
/// suppresses the address); `pause` and `resume` (the days after a pause move by its length);
/// `linkedin-connected`. Autopilot sends directly; co-pilot sends each day's drafts to a
/// reviewer as one batch approval — the approved batch is a frozen scope (its drafts and their
/// preview hash), expires after ``Input/draftApprovalTimeoutSeconds`` (the day is then skipped),
/// and is executed once: its sends carry idempotency keys made from the workflow id, the day and
/// the preview hash, so a re-run never sends it again. Every send passes the outbound checks
/// (suppression, daily limits, emergency stop, shadow mode).
public struct OutreachCadence: Workflow {
    public static let name = "outreach.cadence"

    public struct Lead: Codable, Sendable, Hashable {
        public var firstName: String
        public var email: String
        public var company: String
        public var linkedInURL: String?

        public init(firstName: String, email: String, company: String, linkedInURL: String? = nil) {
            self.firstName = firstName
            self.email = email
            self.company = company
            self.linkedInURL = linkedInURL
        }
    }

    public enum Mode: String, Codable, Sendable, Hashable {
        case autopilot, copilot
    }

    public struct Input: Codable, Sendable {
        public var lead: Lead
        /// The e-mail sender (its domain's daily limit applies).
        public var sender: String
        /// The LinkedIn seat the LinkedIn tasks are for.
        public var linkedInSeat: String
        /// Default the built-in `outreach-21`, its highest registered version.
        public var cadenceID: String?
        public var cadenceVersion: Int?
        /// Default autopilot.
        public var mode: Mode?
        /// Who approves co-pilot drafts (default `role:sdr-lead`).
        public var reviewers: [String]?
        /// How long a day's drafts wait for approval before the day is skipped (default 1 day).
        public var draftApprovalTimeoutSeconds: Double?

        public init(
            lead: Lead, sender: String, linkedInSeat: String, cadenceID: String? = nil, cadenceVersion: Int? = nil,
            mode: Mode? = nil, reviewers: [String]? = nil, draftApprovalTimeoutSeconds: Double? = nil
        ) {
            self.lead = lead
            self.sender = sender
            self.linkedInSeat = linkedInSeat
            self.cadenceID = cadenceID
            self.cadenceVersion = cadenceVersion
            self.mode = mode
            self.reviewers = reviewers
            self.draftApprovalTimeoutSeconds = draftApprovalTimeoutSeconds
        }
    }

    public struct Output: Codable, Sendable, Hashable {
        public var cadenceID: String
        public var cadenceVersion: Int
        /// `closed` (the close day came), or the signal that ended it (`reply`, `unsubscribe`,
        /// `bounce`), or `suppressed` (the address was on the suppression list).
        public var ending: String
        /// What happened to each step: `day N TEMPLATE: shadowed|sent|manualRequired|suppressed|skipped (why)`.
        public var steps: [String]
    }

    /// One co-pilot draft, as the reviewer sees it and as it will be sent.
    public struct Draft: Codable, Sendable, Hashable {
        public var id: String
        public var message: OutboundMessage
    }

    /// A day's drafts: what a co-pilot approval binds to.
    public struct DraftBatch: Codable, Sendable, Hashable {
        public var day: Int
        public var drafts: [Draft]
        /// SHA-256 of the drafts' canonical JSON.
        public var previewHash: String
    }

    public init() {}

    public func run(context: WorkflowContext, input: Input) async throws -> Output {
        let document = try await context.execute(
            LoadCadence.self, .init(id: input.cadenceID ?? CadenceDocument.outreach21.id, version: input.cadenceVersion)
        )
        let draftTimeout = try Duration.checked(
            seconds: input.draftApprovalTimeoutSeconds ?? 86_400, "draftApprovalTimeoutSeconds", allowsZero: false)
        try await context.upsertSearchAttributes([
            "cadenceID": .string(document.id), "cadenceVersion": .int(document.version),
            "lead": .string(input.lead.email), "company": .string(input.lead.company),
        ])
        var state = CadenceState(context: context, start: context.now, exits: document.exits)
        try await context.setStage("running")

        var outcomes: [String] = []
        var steps = document.steps[...]
        while let day = steps.first?.day {
            let todays = Array(steps.prefix { $0.day == day })
            steps = steps.dropFirst(todays.count)
            if let ending = try await state.wait(untilDay: day) {
                return try await end(context, input, document, ending, outcomes)
            }
            var drafts: [Draft] = []
            for (index, step) in todays.enumerated() {
                if let unmet = state.unmet(step.conditions ?? [], lead: input.lead) {
                    outcomes.append("day \(day) \(step.template): skipped (\(unmet))")
                    continue
                }
                drafts.append(Draft(id: "day\(day)-\(index + 1)-\(step.template)", message: render(step, input)))
            }
            guard !drafts.isEmpty else { continue }
            var keyPrefix = "\(context.info.workflowID)/\(document.id)@\(document.version)/day\(day)"
            if input.mode == .copilot {
                let batch = DraftBatch(day: day, drafts: drafts, previewHash: Self.previewHash(drafts))
                try await context.setStage("awaiting-draft-approval")
                let decision = try await context.requestApproval(
                    "drafts-day-\(day)", summary: "Day \(day) drafts for \(input.lead.email) (\(drafts.count))",
                    payload: batch, approvers: input.reviewers ?? ["role:sdr-lead"], timeout: draftTimeout)
                try await context.setStage("running")
                if let ending = try await state.drainSignals() {
                    return try await end(context, input, document, ending, outcomes)
                }
                guard decision.isApproved else {
                    for draft in drafts {
                        outcomes.append("day \(day) \(draft.id): skipped (drafts \(decision.outcome.rawValue))")
                    }
                    continue
                }
                drafts = batch.drafts  // the frozen scope: exactly what was approved
                keyPrefix += "/\(batch.previewHash.prefix(16))"
            }
            for draft in drafts {
                let receipt = try await context.execute(
                    SendMessage.self, draft.message,
                    options: ActivityOptions(
                        retryPolicy: RetryPolicy(initialInterval: .seconds(1), maximumInterval: .seconds(60)),
                        startToCloseTimeout: .seconds(60), idempotencyKey: "\(keyPrefix)/\(draft.id)"))
                outcomes.append("day \(day) \(draft.id): \(receipt.status.rawValue)")
                if receipt.status == .suppressed {
                    return try await end(context, input, document, "suppressed", outcomes)
                }
            }
        }
        if let ending = try await state.wait(untilDay: document.closeOnDay) {
            return try await end(context, input, document, ending, outcomes)
        }
        return try await end(context, input, document, "closed", outcomes)
    }

    private func end(
        _ context: WorkflowContext, _ input: Input, _ document: CadenceDocument, _ ending: String, _ steps: [String]
    ) async throws -> Output {
        if let source = Suppression.Source(rawValue: ending), source == .unsubscribe || source == .bounce {
            _ = try await context.execute(
                SuppressRecipient.self,
                .init(address: input.lead.email, reason: "\(ending) during cadence \(document.id)", source: source))
        }
        try await context.setStage(ending == "closed" ? "closed" : "exited-\(ending)")
        return Output(cadenceID: document.id, cadenceVersion: document.version, ending: ending, steps: steps)
    }

    private func render(_ step: CadenceStep, _ input: Input) -> OutboundMessage {
        func fill(_ text: String) -> String {
            text.replacingOccurrences(of: "{{firstName}}", with: input.lead.firstName)
                .replacingOccurrences(of: "{{company}}", with: input.lead.company)
        }
        let linkedIn = step.channel == .linkedin
        return OutboundMessage(
            channel: step.channel, from: linkedIn ? input.linkedInSeat : input.sender,
            to: linkedIn ? (input.lead.linkedInURL ?? input.lead.email) : input.lead.email,
            subject: step.subject.map(fill), body: fill(step.body), template: step.template)
    }

    static func previewHash(_ drafts: [Draft]) -> String {
        ((try? JSONEncoder.keel.encode(drafts)) ?? Data()).sha256Hex
    }
}

/// The cadence's clock and signals: when each day starts (moved by pauses), whether it is
/// paused, whether LinkedIn connected.
private struct CadenceState {
    let context: WorkflowContext
    var start: Date
    let exits: [CadenceDocument.ExitSignal]
    var connected = false
    var paused = false

    init(context: WorkflowContext, start: Date, exits: [CadenceDocument.ExitSignal]) {
        self.context = context
        self.start = start
        self.exits = exits
    }

    var signals: [String] { exits.map(\.rawValue) + ["pause", "resume", "linkedin-connected"] }

    /// Waits until `day` starts (day 1 is the start), handling signals. - Returns: the exit
    /// signal's name if one ended the cadence.
    mutating func wait(untilDay day: Int) async throws -> String? {
        while true {
            let target = start.addingTimeInterval(Double(day - 1) * 86_400)
            let remaining = target.timeIntervalSince(context.now)
            if !paused, remaining <= 0 { return nil }
            let signal: ReceivedSignal?
            if paused {
                signal = try await context.waitForSignal(anyOf: signals)
            } else {
                signal = try await context.waitForSignal(
                    anyOf: signals, timeout: .milliseconds(Int64((remaining * 1000).rounded(.up))))
            }
            if let signal, let ending = try await handle(signal) { return ending }
        }
    }

    /// Handles the signals that came meanwhile (during an approval), without waiting.
    mutating func drainSignals() async throws -> String? {
        while let signal = try await context.waitForSignal(anyOf: signals, timeout: .milliseconds(1)) {
            if let ending = try await handle(signal) { return ending }
        }
        return nil
    }

    private var pausedAt: Date?

    private mutating func handle(_ signal: ReceivedSignal) async throws -> String? {
        switch signal.name {
        case "pause" where !paused:
            paused = true
            pausedAt = context.now
            try await context.setStage("paused")
        case "resume" where paused:
            paused = false
            start = start.addingTimeInterval(context.now.timeIntervalSince(pausedAt ?? context.now))
            try await context.setStage("running")
        case "linkedin-connected":
            connected = true
        case "pause", "resume":
            break
        default:
            return signal.name  // an exit signal
        }
        return nil
    }

    /// The first condition that does not hold, or `nil`.
    func unmet(_ conditions: [CadenceStep.Condition], lead: OutreachCadence.Lead) -> String? {
        for condition in conditions {
            switch condition {
            case .hasLinkedInURL where (lead.linkedInURL ?? "").isEmpty: return "no LinkedIn profile URL"
            case .linkedInConnected where !connected: return "not connected on LinkedIn"
            default: continue
            }
        }
        return nil
    }
}
