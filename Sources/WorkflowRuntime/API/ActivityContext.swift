import Foundation
import Logging
import Synchronization

/// What an activity attempt knows about itself, and how it reports progress.
///
/// ```swift
/// func run(context: ActivityContext, input: Upload) async throws -> Receipt {
///     for chunk in input.chunks {
///         try await store.put(chunk, idempotencyKey: "\(context.idempotencyKey)/\(chunk.index)")
///         try await context.heartbeat(chunk.index)
///     }
/// }
/// ```
public final class ActivityContext: Sendable {
    /// Stable across retries, crashes and replays: send it to external APIs as `Idempotency-Key`.
    public let idempotencyKey: String
    /// 1 for the first attempt, then 2, 3...
    public let attempt: Int
    public let activityName: String
    public let workflowID: String
    public let runID: String
    /// The activity's sequence number within its run.
    public let sequence: Int
    public let scheduledAt: Date
    /// Progress recorded by the previous attempt's last heartbeat, if any.
    public let lastHeartbeatDetails: Payload?
    private let baseLogger: Logger
    let clock: any WorkflowClock
    private let heartbeatSink: @Sendable (Payload?) async throws -> HeartbeatResponse
    private let cancelled = Atomic<Bool>(false)
    /// Successful heartbeats so far, and when the attempt started or last heartbeated: for the
    /// heartbeat-timeout watchdog (the count tells heartbeats apart on a clock that stands still).
    private let heartbeats: Mutex<(count: Int, at: Date)>
    /// Called once when a heartbeat finds that the attempt must stop (the worker then cancels it).
    private let stopHandler = Mutex<(@Sendable (StopRequest) -> Void)?>(nil)
    private let stopRequest = Mutex<StopRequest?>(nil)

    /// Why a heartbeat stopped the attempt.
    enum StopRequest: Sendable {
        /// Another worker holds the attempt, or its run closed.
        case leaseLost
        /// The workflow code cancelled the activity.
        case cancellationRequested
    }

    private let shuttingDown: @Sendable () -> Bool
    /// Told the time the attempt sleeps until on the clock, and `nil` when it wakes.
    private let sleepTracker: @Sendable (Date?) -> Void

    init(
        task: ActivityTask, clock: any WorkflowClock, logger: Logger,
        isWorkerShuttingDown: @escaping @Sendable () -> Bool = { false },
        sleepTracker: @escaping @Sendable (Date?) -> Void = { _ in },
        heartbeat: @escaping @Sendable (Payload?) async throws -> HeartbeatResponse
    ) {
        shuttingDown = isWorkerShuttingDown
        self.sleepTracker = sleepTracker
        idempotencyKey = task.idempotencyKey
        attempt = task.attempt
        activityName = task.activityName
        workflowID = task.workflowID
        runID = task.runID
        sequence = task.seq
        scheduledAt = task.scheduledAt
        lastHeartbeatDetails = task.heartbeatDetails
        baseLogger = logger
        self.clock = clock
        self.heartbeatSink = heartbeat
        heartbeats = Mutex((0, clock.now()))
    }

    /// A logger carrying the workflow id, activity, idempotency key and attempt as metadata.
    public var logger: Logger {
        var logger = baseLogger
        logger[metadataKey: "workflow-id"] = "\(workflowID)"
        logger[metadataKey: "activity"] = "\(activityName)"
        logger[metadataKey: "idempotency-key"] = "\(idempotencyKey)"
        logger[metadataKey: "attempt"] = "\(attempt)"
        return logger
    }

    /// The engine's current time (the manual clock in tests).
    public var now: Date { clock.now() }

    /// Whether the worker running this attempt is shutting down. The attempt may finish within
    /// the worker's grace period (`worker run --shutdown-grace`); after it, the activity's task is
    /// cancelled and the attempt given back for another worker, with the same idempotency key.
    /// A long activity can check this to save its progress (a heartbeat's details) and stop early.
    public var isWorkerShuttingDown: Bool { shuttingDown() }

    /// Whether the attempt should stop: its workflow cancelled it, its run closed, its lease was
    /// lost, or a timeout passed (the worker then also cancels the activity's task).
    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) || Task.isCancelled }

    /// Reports liveness and progress; extends the attempt's lease. An activity with a heartbeat
    /// timeout must heartbeat within it, or the attempt is cancelled and retried.
    /// - Throws: `CancellationError` when the attempt should stop (its workflow code cancelled the
    ///   activity, its run closed, or another worker took it over after the lease expired); the
    ///   worker then cancels the activity's task. After a cancellation by the workflow the activity
    ///   is not retried: its workflow sees it cancelled (``ActivityCancellationType``).
    public func heartbeat<Details: Encodable>(_ details: Details) async throws {
        try await sendHeartbeat(try Payload.encode(details))
    }

    /// Reports liveness without details.
    public func heartbeat() async throws {
        try await sendHeartbeat(nil)
    }

    /// Waits on the engine's clock: real time in a worker, skipped time in the time-skipping test
    /// environment (which moves its clock once every attempt in flight sleeps here), so polling
    /// loops, backoffs and timeouts of an activity test in milliseconds. Prefer it to `Task.sleep`.
    /// - Throws: `CancellationError` when the attempt is cancelled while it sleeps.
    public func sleep(for duration: Duration) async throws {
        let until = now.addingTimeInterval(try duration.checked("activity sleep").seconds)
        sleepTracker(until)
        defer { sleepTracker(nil) }
        try await clock.sleep(until: until)
    }

    /// Throws `CancellationError` if the attempt should stop.
    public func checkCancellation() throws {
        if isCancelled { throw CancellationError() }
    }

    private func sendHeartbeat(_ details: Payload?) async throws {
        try checkCancellation()
        let request: StopRequest
        switch try await heartbeatSink(details) {
        case .leaseHeld:
            let now = clock.now()
            heartbeats.withLock { $0 = ($0.count + 1, now) }
            return
        case .leaseLost: request = .leaseLost
        case .cancellationRequested: request = .cancellationRequested
        }
        cancelled.store(true, ordering: .relaxed)
        let first = stopRequest.withLock { current -> Bool in
            guard current == nil else { return false }
            current = request
            return true
        }
        if first { takeStopHandler()?(request) }
        throw CancellationError()
    }

    /// Successful heartbeats so far, and when the attempt started or last heartbeated.
    var lastHeartbeat: (count: Int, at: Date) { heartbeats.withLock { $0 } }

    /// Sets what to do once a heartbeat finds that the attempt must stop.
    func onStopRequest(_ handler: @escaping @Sendable (StopRequest) -> Void) {
        stopHandler.withLock { $0 = handler }
        // Stopped before the handler was set: call it now (at most once, as the heartbeat would).
        if let request = stopRequest.withLock({ $0 }) { takeStopHandler()?(request) }
    }

    /// The stop handler, removed so it runs once.
    private func takeStopHandler() -> (@Sendable (StopRequest) -> Void)? {
        stopHandler.withLock { handler in
            defer { handler = nil }
            return handler
        }
    }
}
