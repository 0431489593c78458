import Foundation

/// The source of time for the engine: timers, retries, leases and `WorkflowContext.now` come from it.
///
/// The daemon uses ``SystemClock``; the time-skipping test environment uses a manual clock.
public protocol WorkflowClock: Sendable {
    func now() -> Date
    /// Suspends until the clock reads at least `deadline`, or throws `CancellationError`.
    func sleep(until deadline: Date) async throws
}

/// Wall-clock time.
public struct SystemClock: WorkflowClock {
    public init() {}
    public func now() -> Date { Date() }
    public func sleep(until deadline: Date) async throws {
        let seconds = deadline.timeIntervalSinceNow
        if seconds > 0 { try await Task.sleep(for: .saturating(seconds: seconds)) }
    }
}

extension WorkflowClock {
    func sleep(for duration: Duration) async throws {
        try await sleep(until: now().addingTimeInterval(duration.clampedToLongestAccepted.seconds))
    }
}
