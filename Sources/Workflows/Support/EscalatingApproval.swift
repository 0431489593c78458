import Foundation
import WorkflowRuntime

/// An approval that escalates once: if the first approvers let it expire, the same request goes
/// to the escalation approvers with a fresh deadline; if that expires too, it counts as a rejection.
struct EscalatingApproval {
    /// The approval's name (`manager-approval`); the escalated request is `NAME-escalated`.
    var name: String
    var approvers: [String]
    var escalateTo: [String]
    var timeout: Duration

    /// What became of it: the deciding decision, and whether it was escalated.
    struct Result: Codable, Sendable, Hashable {
        var decision: ApprovalDecision
        var escalated: Bool
        /// Approved by someone (not expired, not rejected).
        var isApproved: Bool { decision.outcome == .approved }
    }

    func decide<P: Encodable & Sendable>(_ context: WorkflowContext, summary: String, payload: P) async throws -> Result
    {
        let first = try await context.requestApproval(
            name, summary: summary, payload: payload, approvers: approvers, timeout: timeout)
        guard first.outcome == .expired, !escalateTo.isEmpty else { return Result(decision: first, escalated: false) }
        let second = try await context.requestApproval(
            "\(name)-escalated", summary: "Escalated (no decision in time): \(summary)", payload: payload,
            approvers: escalateTo, timeout: timeout)
        return Result(decision: second, escalated: true)
    }
}

/// The error that ends a business workflow by a person's or a deadline's decision (a rejection,
/// a decline, an expiry): not retryable, it starts the workflow's compensations.
struct BusinessOutcome {
    static func ended(_ type: String, _ message: String) -> ApplicationError {
        ApplicationError(message, type: type, nonRetryable: true)
    }

    /// The error for an escalating approval that was not given.
    static func notApproved(_ step: String, _ result: EscalatingApproval.Result) -> ApplicationError {
        notApproved(step, result.decision, escalated: result.escalated)
    }

    /// The error for an approval that was not given.
    static func notApproved(_ step: String, _ decision: ApprovalDecision, escalated: Bool = false)
        -> ApplicationError
    {
        let by = decision.decidedBy.map { " by \($0)" } ?? ""
        let note = decision.note.map { ": \($0)" } ?? ""
        let escalated = escalated ? " (after escalation)" : ""
        return decision.outcome == .expired
            ? ended("ApprovalExpired", "\(step) expired\(escalated) and counts as a rejection")
            : ended("ApprovalRejected", "\(step) rejected\(by)\(escalated)\(note)")
    }
}
