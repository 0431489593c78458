/// Thrown by ``WorkflowContext/signalExternal(workflowID:signal:payload:)`` and
/// ``WorkflowContext/cancelExternal(workflowID:reason:)`` when the request has no open run to go to.
/// Nothing was delivered; the sender's code decides what that means.
public struct ExternalWorkflowError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why the request was not delivered.
    public enum Reason: String, Sendable, Hashable, CaseIterable {
        /// No workflow has that id.
        case notFound
        /// The workflow's latest run is closed.
        case closed
        /// The target is the sender's own workflow.
        case ownWorkflow

        /// The failure recorded in the sender's history (type `ExternalWorkflow.REASON`).
        func failure(_ message: String) -> ErrorInfo {
            ErrorInfo(type: "ExternalWorkflow.\(rawValue)", message: message, nonRetryable: true)
        }
    }

    public var workflowID: String
    public var reason: Reason
    public var message: String

    public var description: String { message }

    /// The error for a failure recorded in history.
    init(workflowID: String, failure: ErrorInfo) {
        self.workflowID = workflowID
        self.reason = Reason.allCases.first { "ExternalWorkflow.\($0.rawValue)" == failure.type } ?? .notFound
        self.message = failure.message
    }
}
