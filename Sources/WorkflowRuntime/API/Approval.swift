import Crypto
import Foundation

/// A request for a person's decision, as recorded in the run's history and the approvals table.
///
/// A decision binds to the request's ``id`` and ``payloadHash``: the approver sees the exact payload
/// the workflow asked about, and an approval of anything else is refused.
public struct ApprovalRequest: Sendable, Hashable, Codable {
    /// Stable id (derived from the run and the operation's sequence number), e.g. `apr-3f9c0d2e81b4a7c5`.
    public var id: String
    /// What is being approved, e.g. `manager-approval`.
    public var name: String
    /// One line for the approver.
    public var summary: String
    /// The exact content the decision is about (JSON).
    public var payload: Payload
    /// Lowercase hex SHA-256 of ``payload``'s bytes.
    public var payloadHash: String
    /// Who may decide: names, or roles written `role:NAME`. Empty means anyone.
    public var approvers: [String]
    /// When the request expires if nobody decided.
    public var deadline: Date

    public init(id: String, name: String, summary: String, payload: Payload, approvers: [String], deadline: Date) {
        self.id = id; self.name = name; self.summary = summary; self.payload = payload
        self.payloadHash = Self.hash(of: payload)
        self.approvers = approvers; self.deadline = deadline
    }

    /// Lowercase hex SHA-256 of the payload's bytes.
    public static func hash(of payload: Payload) -> String {
        payload.data.sha256Hex
    }

    /// The id of the approval requested by operation `seq` of run `runID`: the same on every replay.
    static func id(runID: String, seq: Int) -> String {
        let digest = SHA256.hash(data: Data("\(runID)/\(seq)".utf8))
        return "apr-" + digest.prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// Whether `decider` (acting in `role`, if given) may decide this request.
    /// A decider's name is a person's: one written as a role (`role:NAME`) matches nothing, so a
    /// person cannot pass for a role by name.
    public func allows(decider: String, role: String?) -> Bool {
        guard !decider.hasPrefix("role:") else { return false }
        return approvers.isEmpty || approvers.contains(decider) || role.map { approvers.contains("role:\($0)") } == true
    }
}

/// How an approval request ended.
public struct ApprovalDecision: Sendable, Hashable, Codable {
    public enum Outcome: String, Sendable, Codable {
        case approved, rejected, expired
    }

    public var outcome: Outcome
    /// Who decided (`nil` when the request expired).
    public var decidedBy: String?
    /// The role the decider acted in, if they named one.
    public var role: String?
    /// The approver's note, or the rejection's reason.
    public var note: String?
    public var decidedAt: Date

    public init(outcome: Outcome, decidedBy: String? = nil, role: String? = nil, note: String? = nil, decidedAt: Date) {
        self.outcome = outcome; self.decidedBy = decidedBy; self.role = role; self.note = note;
        self.decidedAt = decidedAt
    }

    public var isApproved: Bool { outcome == .approved }
}

/// An approval the workflow requested and has not necessarily waited for yet (see
/// ``WorkflowContext/startApproval(_:summary:payload:approvers:timeout:)``). A decision that
/// arrives before ``decision()`` is called is kept.
public struct PendingApproval: Sendable {
    public let request: ApprovalRequest
    let seq: Int
    let context: WorkflowContext

    public var id: String { request.id }

    /// Waits for the decision (or the deadline, which yields ``ApprovalDecision/Outcome/expired``).
    /// - Throws: ``WorkflowCancelledError`` when the run is cancelled first.
    public func decision() async throws -> ApprovalDecision {
        try await context.decision(of: self)
    }
}

extension Data {
    /// Lowercase hex SHA-256 of the bytes: what approvals, term sheets, memos, cadences and
    /// evidence packs bind to.
    package var sha256Hex: String {
        SHA256.hash(data: self).map { String(format: "%02x", $0) }.joined()
    }
}
