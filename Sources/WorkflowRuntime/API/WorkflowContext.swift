import Foundation
import Logging

/// What workflow code uses for everything that is not deterministic: activities, time, timers,
/// signals, randomness and side effects. Each call is recorded in the run's history, so a replay
/// of the same code returns the same results.
///
/// ```swift
/// let draft = try await context.execute(DraftEmail.self, lead, options: .init(startToCloseTimeout: .seconds(30)))
/// try await context.sleep(for: .seconds(86_400 * 2))
/// let reply = try await context.waitForSignal("reply", as: Reply.self, timeout: .seconds(3600))
/// ```
///
/// Use it only from the workflow's own code (including its `async let` and task-group children).
public final class WorkflowContext: @unchecked Sendable {
    private unowned let execution: WorkflowExecution

    init(execution: WorkflowExecution) {
        self.execution = execution
    }

    /// The run's identity.
    public var info: WorkflowInfo { execution.info }

    /// Workflow time: the time of the latest event the code has seen (deterministic on replay).
    public var now: Date { execution.now }

    /// Whether the code is being replayed from history (its effects already happened once).
    public var isReplaying: Bool { execution.isReplaying }

    /// Whether cancellation of the run has been requested. Operations then throw ``WorkflowCancelledError``.
    public var isCancellationRequested: Bool { execution.isCancellationRequested }

    /// Number of events in the run's history so far; past a few thousand, prefer continue-as-new.
    public var historyLength: Int { execution.historyLength }

    /// A logger for workflow code, with the run's ids as metadata. It stays silent while the code
    /// is being replayed, so each line is logged once.
    public var logger: Logger { execution.logger }

    /// A random number generator seeded by the run: the same numbers on every replay.
    public var random: WorkflowRandom { execution.random }

    /// A random UUID that is the same on every replay.
    public func uuid() -> UUID { execution.random.uuid() }

    /// Runs an activity durably and returns its output.
    ///
    /// The activity is scheduled with a stable idempotency key and retried according to
    /// `options.retryPolicy`. - Throws: ``ActivityFailure`` when it fails for good,
    /// ``WorkflowCancelledError`` when the run is cancelled.
    public func execute<A: Activity>(_ activity: A.Type, _ input: A.Input, options: ActivityOptions = ActivityOptions()) async throws -> A.Output {
        let payload = try Payload.encode(input)
        let result = try await execution.executeActivity(name: A.name, input: payload, options: options)
        do { return try result.decode(as: A.Output.self) } catch {
            try await execution.failTask("cannot decode the result of activity '\(A.name)': \(error)")
        }
    }

    /// Sleeps durably: a timer row survives crashes and fires once.
    public func sleep(for duration: Duration) async throws {
        try await execution.sleep(seconds: duration.seconds)
    }

    /// Sleeps durably until workflow time reaches `date`.
    public func sleep(until date: Date) async throws {
        try await execution.sleep(seconds: date.timeIntervalSince(now))
    }

    /// Waits for the next signal called `name` and decodes its payload. Signals that arrived
    /// before the wait are buffered and delivered in order.
    public func waitForSignal<T: Decodable>(_ name: String, as type: T.Type = T.self) async throws -> T {
        let payload = try await execution.waitForSignal(named: name, timeout: nil)!
        return try decodeSignal(payload, name: name)
    }

    /// Waits for the next signal called `name`, at most `timeout` of workflow time.
    /// - Returns: the decoded payload, or `nil` if the timeout passed first.
    public func waitForSignal<T: Decodable>(_ name: String, as type: T.Type = T.self, timeout: Duration) async throws -> T? {
        guard let payload = try await execution.waitForSignal(named: name, timeout: timeout) else { return nil }
        return try decodeSignal(payload, name: name) as T
    }

    /// Runs `body` once and records its result; replays return the recorded result without running it.
    public func sideEffect<T: Codable & Sendable>(_ body: () throws -> T) async throws -> T {
        let payload = try await execution.sideEffect(named: "sideEffect") { try Payload.encode(try body()) }
        return try payload.decode(as: T.self)
    }

    private func decodeSignal<T: Decodable>(_ payload: Payload, name: String) throws -> T {
        do { return try payload.decode(as: T.self) } catch {
            throw ApplicationError("signal '\(name)' payload does not decode as \(T.self): \(error)",
                                   type: "SignalPayloadDecoding", nonRetryable: true)
        }
    }
}
