/// A failure as it is stored in history and shown to operators: the error's type and message,
/// whether retrying can help, typed details, and what caused it — for an activity's failure, the
/// activity's own error, the attempts made and why retrying stopped. The chain survives history,
/// replay, the client and `worker show`.
public struct ErrorInfo: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Why an activity was not retried again.
    public enum RetryState: String, Sendable, Hashable, Codable {
        /// The error was non-retryable (``ApplicationError/nonRetryable`` or a type in
        /// ``RetryPolicy/nonRetryableErrorTypes``).
        case nonRetryableFailure
        /// ``RetryPolicy/maximumAttempts`` attempts were made.
        case maximumAttemptsReached
        /// The schedule-to-close timeout would pass before the next attempt.
        case timeout
    }

    /// The Swift type name of the error, or an application-chosen type (see ``ApplicationError``).
    public var type: String
    public var message: String
    /// Whether the failure may not be retried (set by ``ApplicationError/nonRetryable``).
    public var nonRetryable: Bool
    /// Typed details the thrower attached (``ApplicationError/details``), e.g. a provider's answer.
    public var details: Payload?
    /// For an activity's failure: the attempts made.
    public var attempts: Int?
    /// For an activity's failure: why it was not retried again.
    public var retryState: RetryState?
    /// The delay the thrower asked for before the next attempt, in seconds
    /// (``ApplicationError/nextRetryDelay``).
    public var nextRetryDelay: Double?
    /// One element at most (an array gives the recursive value its storage).
    private var causes: [ErrorInfo]

    /// What caused this failure: for ``ActivityFailure``, the activity's own error.
    public var cause: ErrorInfo? {
        get { causes.first }
        set { causes = newValue.map { [$0] } ?? [] }
    }

    public init(
        type: String, message: String, nonRetryable: Bool = false, details: Payload? = nil, cause: ErrorInfo? = nil,
        attempts: Int? = nil, retryState: RetryState? = nil
    ) {
        self.type = type
        self.message = message
        self.nonRetryable = nonRetryable
        self.details = details
        self.attempts = attempts
        self.retryState = retryState
        self.causes = cause.map { [$0] } ?? []
    }

    /// Describes any error: ``ApplicationError`` keeps its declared type and details,
    /// ``ActivityFailure`` keeps the activity's error as its cause; other errors use their Swift
    /// type name.
    public init(_ error: Error) {
        switch error {
        case let error as ApplicationError:
            self.init(
                type: error.type, message: error.message, nonRetryable: error.nonRetryable, details: error.details)
            nextRetryDelay = error.nextRetryDelay.map { max(0, $0.seconds) }
        case let error as KeelError:
            self.init(type: "KeelError.\(error.code.rawValue)", message: error.message)
        case let error as ExternalWorkflowError:
            self = error.reason.failure(error.message)
        case let error as InvalidValueError:
            self.init(type: "InvalidValue", message: error.description, nonRetryable: true)
        case let error as ChildWorkflowFailure:
            self.init(
                type: "ChildWorkflowFailure",
                message: "child workflow '\(error.workflowType)' (id \(error.workflowID)) \(error.status.rawValue)",
                nonRetryable: error.cause.nonRetryable, cause: error.cause)
        case let error as ChildWorkflowStartError:
            self.init(type: "ChildWorkflowStart", message: error.message, nonRetryable: true)
        case let error as ActivityFailure:
            self.init(
                type: "ActivityFailure",
                message: "activity '\(error.activityName)' failed after \(error.attempts) attempt(s)",
                nonRetryable: error.cause.nonRetryable, cause: error.cause, attempts: error.attempts,
                retryState: error.cause.retryState)
        default:
            self.init(type: String(describing: Swift.type(of: error)), message: String(describing: error))
        }
    }

    /// `type: message`, then each cause: `type: message ← caused by type: message`.
    public var description: String {
        "\(type): \(message)" + (cause.map { " ← caused by \($0)" } ?? "")
    }

    private enum Key: String, CodingKey {
        case type, message, nonRetryable, details, attempts, retryState, nextRetryDelay, cause
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        self.init(
            type: try c.decode(String.self, forKey: .type), message: try c.decode(String.self, forKey: .message),
            nonRetryable: try c.decodeIfPresent(Bool.self, forKey: .nonRetryable) ?? false,
            details: try c.decodeIfPresent(Payload.self, forKey: .details),
            cause: try c.decodeIfPresent(ErrorInfo.self, forKey: .cause),
            attempts: try c.decodeIfPresent(Int.self, forKey: .attempts),
            retryState: try c.decodeIfPresent(RetryState.self, forKey: .retryState))
        nextRetryDelay = try c.decodeIfPresent(Double.self, forKey: .nextRetryDelay)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(type, forKey: .type)
        try c.encode(message, forKey: .message)
        try c.encode(nonRetryable, forKey: .nonRetryable)
        try c.encodeIfPresent(details, forKey: .details)
        try c.encodeIfPresent(attempts, forKey: .attempts)
        try c.encodeIfPresent(retryState, forKey: .retryState)
        try c.encodeIfPresent(nextRetryDelay, forKey: .nextRetryDelay)
        try c.encodeIfPresent(cause, forKey: .cause)
    }
}

/// An error that activities and workflows throw to name their failure's type and to say whether
/// retrying can help.
///
/// ```swift
/// throw ApplicationError("card declined", type: "CardDeclined", nonRetryable: true)
/// ```
public struct ApplicationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var type: String
    public var nonRetryable: Bool
    /// Typed details for whoever handles the failure (the workflow, an operator): kept in history
    /// as ``ErrorInfo/details``.
    public var details: Payload?
    /// The delay before the next attempt, in place of the retry policy's backoff (as Temporal's
    /// `nextRetryDelay`): a provider's `Retry-After`, a send deferred to tomorrow. The attempt still
    /// counts against ``RetryPolicy/maximumAttempts``; a non-retryable error ignores it.
    public var nextRetryDelay: Duration?

    public init(
        _ message: String, type: String = "ApplicationError", nonRetryable: Bool = false,
        nextRetryDelay: Duration? = nil
    ) {
        self.message = message
        self.type = type
        self.nonRetryable = nonRetryable
        self.nextRetryDelay = nextRetryDelay
    }

    /// An error with typed details, e.g. a provider's error body.
    /// - Throws: ``KeelError`` `.payloadEncoding` if `details` cannot be encoded.
    public init<Details: Encodable>(
        _ message: String, type: String = "ApplicationError", nonRetryable: Bool = false,
        details: Details
    ) throws {
        self.init(message, type: type, nonRetryable: nonRetryable)
        self.details = try Payload.encode(details)
    }

    public var description: String { message }
}

/// Thrown into workflow code when an activity failed for good (retries exhausted, a non-retryable
/// error, or its schedule-to-close timeout passed).
public struct ActivityFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var activityName: String
    /// The activity's own error: its type, message, details and why retrying stopped.
    public var cause: ErrorInfo
    public var attempts: Int

    /// Why the activity was not retried again.
    public var retryState: ErrorInfo.RetryState? { cause.retryState }

    public init(activityName: String, cause: ErrorInfo, attempts: Int) {
        self.activityName = activityName
        self.cause = cause
        self.attempts = attempts
    }

    public var description: String {
        "activity '\(activityName)' failed after \(attempts) attempt(s): \(cause)"
    }
}

/// Thrown into workflow code once the run's cancellation was requested: by pending operations, and
/// at once by any later operation. A workflow that lets it escape ends as `cancelled`.
public struct WorkflowCancelledError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String?
    public init(reason: String?) { self.reason = reason }
    public var description: String { "workflow cancelled" + (reason.map { ": \($0)" } ?? "") }
}
