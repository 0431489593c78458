import Foundation

/// Where an approval request stands.
public enum ApprovalStatus: String, Sendable, Codable, CaseIterable {
    case pending, approved, rejected, expired
    /// The workflow stopped waiting (it closed, or started compensating) before anyone decided.
    case withdrawn
}

/// An approval request as stored, with its decision once there is one.
public struct ApprovalRecord: Sendable, Hashable, Codable {
    public var request: ApprovalRequest
    public var workflowID: String
    public var runID: String
    /// The sequence number of the workflow operation that requested it.
    public var seq: Int
    public var workflowType: String
    public var requestedAt: Date
    public var status: ApprovalStatus
    /// Set once approved, rejected or expired.
    public var decision: ApprovalDecision?
    /// When a withdrawn request was withdrawn.
    public var closedAt: Date?

    public var id: String { request.id }

    public init(
        request: ApprovalRequest, workflowID: String, runID: String, seq: Int, workflowType: String, requestedAt: Date,
        status: ApprovalStatus, decision: ApprovalDecision?, closedAt: Date?
    ) {
        self.request = request; self.workflowID = workflowID; self.runID = runID; self.seq = seq;
        self.workflowType = workflowType
        self.requestedAt = requestedAt; self.status = status; self.decision = decision; self.closedAt = closedAt
    }

    /// This record once `attempt` decided it.
    package func decided(by attempt: ApprovalDecisionRequest) -> ApprovalRecord {
        var record = self
        record.decision = attempt.decision
        record.status = attempt.approve ? .approved : .rejected
        record.closedAt = attempt.now
        return record
    }

    /// The audit entry of `attempt` on this request: its acceptance, or its refusal for `refusal`.
    package func auditEntry(for attempt: ApprovalDecisionRequest, refusal: String?) -> ApprovalAuditEntry {
        ApprovalAuditEntry(
            approvalID: id, runID: runID, at: attempt.now,
            action: refusal != nil ? .refused : attempt.approve ? .approved : .rejected,
            actor: attempt.decidedBy, role: attempt.role, origin: attempt.origin, note: attempt.note, detail: refusal,
            payloadHash: refusal != nil ? attempt.payloadHashPrefix : request.payloadHash)
    }

    /// Why `attempt` may not decide this request, or `nil` when it may. Both stores decide with
    /// these rules, under the row's write lock.
    package func refusal(of attempt: ApprovalDecisionRequest, runIsOpen: Bool) -> String? {
        let id = request.id
        switch status {
        case .approved, .rejected:
            let by = decision?.decidedBy.map { " by \($0)" } ?? ""
            let at = decision.map { " at \($0.decidedAt.formatted(.iso8601))" } ?? ""
            return "approval \(id) was already \(status.rawValue)\(by)\(at)"
        case .expired:
            return "approval \(id) is stale: it expired at \(request.deadline.formatted(.iso8601))"
        case .withdrawn:
            return "approval \(id) is stale: the workflow stopped waiting for it"
        case .pending:
            break
        }
        if !runIsOpen { return "approval \(id) is stale: workflow '\(workflowID)' is closed" }
        if attempt.now >= request.deadline {
            return "approval \(id) is stale: its deadline \(request.deadline.formatted(.iso8601)) has passed"
        }
        if let prefix = attempt.payloadHashPrefix, !request.payloadHash.hasPrefix(prefix.lowercased()) {
            let shown = request.payloadHash.prefix(16)
            return "approval \(id) is for the payload with SHA-256 \(shown)…, not \(prefix): "
                + "review the current payload (`worker approvals`) before deciding"
        }
        if !request.allows(decider: attempt.decidedBy, role: attempt.role) {
            let who = attempt.role.map { "\(attempt.decidedBy) (as \($0))" } ?? attempt.decidedBy
            return "\(who) may not decide approval \(id); allowed: \(request.approvers.joined(separator: ", "))"
        }
        return nil
    }
}

/// A person's decision on an approval request, as submitted (see
/// ``WorkflowClient/approve(_:by:role:note:payloadHashPrefix:origin:)``).
public struct ApprovalDecisionRequest: Sendable {
    public var approvalID: String
    public var approve: Bool
    public var decidedBy: String
    public var role: String?
    /// The approval's note or the rejection's reason.
    public var note: String?
    /// When given, the decision binds to a payload whose SHA-256 starts with it.
    public var payloadHashPrefix: String?
    /// Where the decision came from (e.g. `cli ada@host-1`), for the audit trail.
    public var origin: String
    public var now: Date

    public init(
        approvalID: String, approve: Bool, decidedBy: String, role: String? = nil, note: String? = nil,
        payloadHashPrefix: String? = nil, origin: String, now: Date
    ) {
        self.approvalID = approvalID; self.approve = approve; self.decidedBy = decidedBy; self.role = role;
        self.note = note
        self.payloadHashPrefix = payloadHashPrefix; self.origin = origin; self.now = now
    }

    package var decision: ApprovalDecision {
        ApprovalDecision(
            outcome: approve ? .approved : .rejected, decidedBy: decidedBy, role: role, note: note, decidedAt: now)
    }
}

/// One line of an approval's audit trail: its request, each decision (accepted or refused), its expiry or withdrawal.
public struct ApprovalAuditEntry: Sendable, Hashable, Codable {
    public enum Action: String, Sendable, Codable {
        case requested, approved, rejected, expired, withdrawn, refused
    }

    public var approvalID: String
    public var runID: String
    public var at: Date
    public var action: Action
    public var actor: String?
    public var role: String?
    public var origin: String?
    /// The decider's note or reason.
    public var note: String?
    /// Why a decision was refused.
    public var detail: String?
    /// The payload hash the entry concerns (the one a refused decider named, if any).
    public var payloadHash: String?

    public init(
        approvalID: String, runID: String, at: Date, action: Action, actor: String? = nil, role: String? = nil,
        origin: String? = nil, note: String? = nil, detail: String? = nil, payloadHash: String? = nil
    ) {
        self.approvalID = approvalID; self.runID = runID; self.at = at; self.action = action; self.actor = actor;
        self.role = role
        self.origin = origin; self.note = note; self.detail = detail; self.payloadHash = payloadHash
    }
}

/// Filters for listing approvals, newest first.
public struct ApprovalQuery: Sendable {
    public var pendingOnly: Bool
    public var runID: String?
    public var limit: Int

    public init(pendingOnly: Bool = false, runID: String? = nil, limit: Int = 100) {
        self.pendingOnly = pendingOnly; self.runID = runID; self.limit = limit
    }
}

/// The outcome of a decision attempt inside a store transaction: refusals are audited (committed)
/// and then thrown.
package enum ApprovalDecisionOutcome: Sendable {
    case decided(ApprovalRecord)
    case refused(String)

    package func get() throws -> ApprovalRecord {
        switch self {
        case .decided(let record): return record
        case .refused(let message): throw KeelError(.approvalRefused, message)
        }
    }
}
