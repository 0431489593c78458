/// How an activity is retried when it fails.
///
/// The delay before attempt `n + 1` is `initialInterval * backoffCoefficient^(n - 1)`, capped at
/// `maximumInterval`. As in Temporal, retries are unlimited unless `maximumAttempts` is set or a
/// schedule-to-close timeout ends them.
public struct RetryPolicy: Sendable, Hashable {
    public var initialInterval: Duration
    public var backoffCoefficient: Double
    /// Defaults to 100 × `initialInterval`.
    public var maximumInterval: Duration?
    /// `nil` means unlimited.
    public var maximumAttempts: Int?
    /// Error type names (``ErrorInfo/type``) that fail the activity at once.
    public var nonRetryableErrorTypes: [String]

    public init(
        initialInterval: Duration = .seconds(1),
        backoffCoefficient: Double = 2,
        maximumInterval: Duration? = nil,
        maximumAttempts: Int? = nil,
        nonRetryableErrorTypes: [String] = []
    ) {
        self.initialInterval = initialInterval
        self.backoffCoefficient = backoffCoefficient
        self.maximumInterval = maximumInterval
        self.maximumAttempts = maximumAttempts
        self.nonRetryableErrorTypes = nonRetryableErrorTypes
    }

    /// The delay after a failed `attempt` (1-based) before the next one.
    public func delay(afterAttempt attempt: Int) -> Duration {
        let cap = maximumInterval ?? initialInterval * 100
        let factor = pow(backoffCoefficient, Double(max(0, attempt - 1)))
        let seconds = min(initialInterval.seconds * factor, cap.seconds)
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    /// Whether a failure may be retried after `attempt` attempts.
    public func allowsRetry(after attempt: Int, failure: ErrorInfo) -> Bool {
        if failure.nonRetryable || nonRetryableErrorTypes.contains(failure.type) { return false }
        if let maximumAttempts, attempt >= maximumAttempts { return false }
        return true
    }
}

/// Options for one activity invocation.
public struct ActivityOptions: Sendable, Hashable {
    public var retryPolicy: RetryPolicy
    /// Longest time one attempt may run; also the lease a worker holds on the attempt, so a
    /// crashed worker's attempt is retried once it passes. Defaults to the worker's setting.
    public var startToCloseTimeout: Duration?
    /// Longest time from scheduling to the final outcome, retries included.
    public var scheduleToCloseTimeout: Duration?
    /// Longest time between heartbeats before the attempt counts as lost.
    public var heartbeatTimeout: Duration?
    /// The queue whose workers run this activity; `nil` is the default queue.
    public var taskQueue: String?
    /// Replaces the derived key (`workflowID/runID/sequence`). Must be unique per side effect.
    public var idempotencyKey: String?

    public init(
        retryPolicy: RetryPolicy = RetryPolicy(),
        startToCloseTimeout: Duration? = nil,
        scheduleToCloseTimeout: Duration? = nil,
        heartbeatTimeout: Duration? = nil,
        taskQueue: String? = nil,
        idempotencyKey: String? = nil
    ) {
        self.retryPolicy = retryPolicy
        self.startToCloseTimeout = startToCloseTimeout
        self.scheduleToCloseTimeout = scheduleToCloseTimeout
        self.heartbeatTimeout = heartbeatTimeout
        self.taskQueue = taskQueue
        self.idempotencyKey = idempotencyKey
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    static func seconds(_ value: Double) -> Duration {
        .nanoseconds(Int64((value * 1e9).rounded()))
    }
}

import Foundation
