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
        // In seconds and saturating: huge intervals or attempt counts must not trap the arithmetic.
        let cap = maximumInterval?.seconds ?? initialInterval.seconds * 100
        let factor = pow(backoffCoefficient, Double(max(0, attempt - 1)))
        return .saturating(seconds: min(initialInterval.seconds * factor, cap))
    }

    /// Checks that the policy can be followed: a positive initial interval (zero would retry in a
    /// busy loop), a finite backoff coefficient of at least 1, a maximum interval no shorter than
    /// the initial one, at least one attempt, every interval within ``Duration/longestAccepted``.
    /// - Throws: ``InvalidValueError`` naming the field.
    public func validate() throws {
        _ = try initialInterval.checked("retry policy initialInterval", allowsZero: false)
        guard backoffCoefficient >= 1, backoffCoefficient <= 1000 else {
            throw InvalidValueError(
                name: "retry policy backoffCoefficient", value: "\(backoffCoefficient)",
                requirement: "a number from 1 to 1000")
        }
        if let maximumInterval {
            _ = try maximumInterval.checked("retry policy maximumInterval", allowsZero: false)
            guard maximumInterval >= initialInterval else {
                throw InvalidValueError(
                    name: "retry policy maximumInterval", value: "\(maximumInterval)",
                    requirement: "at least the initial interval (\(initialInterval))")
            }
        }
        if let maximumAttempts, maximumAttempts < 1 {
            throw InvalidValueError(
                name: "retry policy maximumAttempts", value: "\(maximumAttempts)",
                requirement: "at least 1 (leave it unset for unlimited attempts)")
        }
    }

    /// Whether the failure is never retried: marked non-retryable, or of a non-retryable type.
    public func isNonRetryable(_ failure: ErrorInfo) -> Bool {
        failure.nonRetryable || nonRetryableErrorTypes.contains(failure.type)
    }

    /// Whether a failure may be retried after `attempt` attempts.
    public func allowsRetry(after attempt: Int, failure: ErrorInfo) -> Bool {
        if isNonRetryable(failure) { return false }
        if let maximumAttempts, attempt >= maximumAttempts { return false }
        return true
    }
}

/// Options for one activity invocation.
/// What cancelling the Swift task that awaits an activity does (a task-group branch cancelled by
/// `cancelAll()`, an `async let` left unawaited), as in Temporal.
public enum ActivityCancellationType: String, Sendable, Hashable, Codable, CaseIterable {
    /// Ask the activity to stop and throw `CancellationError` in the workflow at once.
    case tryCancel
    /// Ask the activity to stop and wait until it has: `CancellationError` once it acknowledged
    /// (or had not started), its result or failure if it finished first.
    case waitCancellationCompleted
    /// Stop waiting at once and leave the activity alone: it runs on, and its outcome is ignored.
    case abandon
}

public struct ActivityOptions: Sendable, Hashable {
    public var retryPolicy: RetryPolicy
    /// Longest time one attempt may run; also the lease a worker holds on the attempt, so a
    /// crashed worker's attempt is retried once it passes. Defaults to the worker's setting.
    public var startToCloseTimeout: Duration?
    /// Longest time from scheduling to the final outcome, retries included.
    public var scheduleToCloseTimeout: Duration?
    /// Longest time between heartbeats before the attempt counts as lost.
    public var heartbeatTimeout: Duration?
    /// The queue whose workers run this activity; `nil` is its run's queue (see ``TaskQueue``).
    public var taskQueue: String?
    /// Replaces the derived key (`workflowID/runID/sequence`). Must be unique per side effect.
    public var idempotencyKey: String?
    /// What cancelling the awaiting task does. A running attempt learns of a request at its next
    /// heartbeat (``ActivityContext/heartbeat()`` throws `CancellationError`); one that never
    /// heartbeats runs to its end.
    public var cancellationType: ActivityCancellationType

    public init(
        retryPolicy: RetryPolicy = RetryPolicy(),
        startToCloseTimeout: Duration? = nil,
        scheduleToCloseTimeout: Duration? = nil,
        heartbeatTimeout: Duration? = nil,
        taskQueue: String? = nil,
        idempotencyKey: String? = nil,
        cancellationType: ActivityCancellationType = .tryCancel
    ) {
        self.retryPolicy = retryPolicy
        self.startToCloseTimeout = startToCloseTimeout
        self.scheduleToCloseTimeout = scheduleToCloseTimeout
        self.heartbeatTimeout = heartbeatTimeout
        self.taskQueue = taskQueue
        self.idempotencyKey = idempotencyKey
        self.cancellationType = cancellationType
    }

    /// How long a worker holds an attempt before another may take it over, if the options say:
    /// the heartbeat timeout when it is shorter than the start-to-close timeout (a worker that dies
    /// mid-attempt is then noticed at the heartbeat timeout), else the start-to-close timeout —
    /// plus ``leaseGrace``: the worker running the attempt gives up at the timeout itself, and its
    /// retry is recorded before anyone else may start the next attempt.
    package var attemptLease: Duration? {
        let limit: Duration? =
            switch (heartbeatTimeout, startToCloseTimeout) {
            case (let heartbeat?, let startToClose?): min(heartbeat, startToClose)
            case (let heartbeat?, nil): heartbeat
            case (nil, let startToClose): startToClose
            }
        return limit.map { $0.clampedToLongestAccepted + Self.leaseGrace }
    }

    /// How much longer than an attempt's timeout its lease lasts (see ``attemptLease``).
    static let leaseGrace: Duration = .seconds(1)

    /// Checks every timeout (positive, at most ``Duration/longestAccepted``: a zero or negative
    /// start-to-close timeout would fail every attempt at once and retry forever) and the retry
    /// policy. The engine checks the options of every activity a workflow schedules.
    /// - Throws: ``InvalidValueError`` naming the option.
    public func validate() throws {
        try retryPolicy.validate()
        _ = try startToCloseTimeout?.checked("startToCloseTimeout", allowsZero: false)
        _ = try scheduleToCloseTimeout?.checked("scheduleToCloseTimeout", allowsZero: false)
        _ = try heartbeatTimeout?.checked("heartbeatTimeout", allowsZero: false)
        if let taskQueue, (try? NameRules.check(taskQueue, as: "taskQueue")) == nil {
            throw InvalidValueError(
                name: "taskQueue", value: NameRules.escapingControls(taskQueue).debugDescription,
                requirement: "a name that is not blank and holds no control characters")
        }
        if let idempotencyKey, idempotencyKey.isEmpty {
            throw InvalidValueError(name: "idempotencyKey", value: "\"\"", requirement: "a non-empty string (or unset)")
        }
    }
}

extension Duration {
    /// The duration in seconds, as a `Double`.
    public var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}

import Foundation
