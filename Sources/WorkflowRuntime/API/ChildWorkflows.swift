/// What happens to a child workflow that is still open when its parent closes (completes, fails,
/// is cancelled, terminated, or continues as new).
public enum ParentClosePolicy: String, Sendable, Hashable, Codable, CaseIterable {
    /// The child is terminated with its parent (the default, as in Temporal).
    case terminate
    /// The child is asked to cancel: its code sees ``WorkflowCancelledError`` and decides how to end.
    case requestCancel
    /// The child goes on alone.
    case abandon
}

/// How a child workflow runs (see ``WorkflowContext/startChild(_:id:input:options:)``).
public struct ChildWorkflowOptions: Sendable, Hashable, Codable {
    /// The child's task queue; the parent's when `nil`.
    public var taskQueue: String?
    public var parentClosePolicy: ParentClosePolicy

    public init(taskQueue: String? = nil, parentClosePolicy: ParentClosePolicy = .terminate) {
        self.taskQueue = taskQueue
        self.parentClosePolicy = parentClosePolicy
    }

    private enum Key: String, CodingKey { case taskQueue, parentClosePolicy }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        taskQueue = try c.decodeIfPresent(String.self, forKey: .taskQueue)
        parentClosePolicy = try c.decodeIfPresent(ParentClosePolicy.self, forKey: .parentClosePolicy) ?? .terminate
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encodeIfPresent(taskQueue, forKey: .taskQueue)
        if parentClosePolicy != .terminate { try c.encode(parentClosePolicy, forKey: .parentClosePolicy) }
    }
}

/// A started child workflow, for its parent's code.
public struct ChildWorkflowHandle<W: Workflow>: Sendable {
    public let workflowID: String
    /// The child's first run (a child that continues as new goes on in later runs of its id).
    public let runID: String
    let seq: Int
    let context: WorkflowContext

    /// Waits durably for the child to close and returns its result.
    /// - Throws: ``ChildWorkflowFailure`` when it failed, was cancelled, terminated or compensated;
    ///   ``WorkflowCancelledError`` when the parent is cancelled meanwhile.
    public func result() async throws -> W.Output {
        try await context.childResult(of: self)
    }
}

/// Thrown into a parent's code when its child did not complete. ``cause`` is the child's own
/// failure — its type, message, non-retryable flag and details — so the parent can decide what to
/// compensate.
public struct ChildWorkflowFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var workflowType: String
    public var workflowID: String
    /// The child's last run.
    public var runID: String
    /// `failed`, `cancelled`, `terminated` or `compensated`.
    public var status: RunStatus
    /// The child's failure; a cancellation or termination is of type `WorkflowCancelled` /
    /// `WorkflowTerminated` with the reason as its message.
    public var cause: ErrorInfo

    public init(workflowType: String, workflowID: String, runID: String, status: RunStatus, cause: ErrorInfo) {
        self.workflowType = workflowType
        self.workflowID = workflowID
        self.runID = runID
        self.status = status
        self.cause = cause
    }

    public var description: String {
        "child workflow '\(workflowType)' (id \(workflowID)) \(status.rawValue): \(cause)"
    }
}

/// Thrown by ``WorkflowContext/startChild(_:id:input:options:)`` when the child cannot start: its
/// id has an open run that is not this child. Nothing was started.
public struct ChildWorkflowStartError: Error, Sendable, Hashable, CustomStringConvertible {
    public var workflowID: String
    public var message: String

    public var description: String { message }
}
