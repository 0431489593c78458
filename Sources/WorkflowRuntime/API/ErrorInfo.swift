/// A failure as it is stored in history and shown to operators: the error's type name and message.
public struct ErrorInfo: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The Swift type name of the error, or an application-chosen type (see ``ApplicationError``).
    public var type: String
    public var message: String
    /// Whether the failure may not be retried (set by ``ApplicationError/nonRetryable``).
    public var nonRetryable: Bool

    public init(type: String, message: String, nonRetryable: Bool = false) {
        self.type = type
        self.message = message
        self.nonRetryable = nonRetryable
    }

    /// Describes any error: ``ApplicationError`` keeps its declared type; other errors use their Swift type name.
    public init(_ error: Error) {
        switch error {
        case let error as ApplicationError:
            self.init(type: error.type, message: error.message, nonRetryable: error.nonRetryable)
        case let error as KeelError:
            self.init(type: "KeelError.\(error.code.rawValue)", message: error.message)
        case let error as InvalidValueError:
            self.init(type: "InvalidValue", message: error.description, nonRetryable: true)
        case let error as ActivityFailure:
            self.init(type: "ActivityFailure", message: error.description)
        default:
            self.init(type: String(describing: Swift.type(of: error)), message: String(describing: error))
        }
    }

    public var description: String { "\(type): \(message)" }
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

    public init(_ message: String, type: String = "ApplicationError", nonRetryable: Bool = false) {
        self.message = message
        self.type = type
        self.nonRetryable = nonRetryable
    }

    public var description: String { message }
}

/// Thrown into workflow code when an activity failed for good (retries exhausted, a non-retryable
/// error, or its schedule-to-close timeout passed).
public struct ActivityFailure: Error, Sendable, Hashable, CustomStringConvertible {
    public var activityName: String
    public var cause: ErrorInfo
    public var attempts: Int

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
