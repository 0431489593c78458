/// A condition a test polled for did not hold in time.
public struct TimedOut: Error, CustomStringConvertible {
    public let description: String
}

/// Polls `condition` every `interval` until it returns a value, or fails with `what` after `timeout`.
/// For tests that drive real workers, whose progress takes wall time.
public func eventually<T>(_ what: String, timeout: Duration = .seconds(60), interval: Duration = .milliseconds(50),
                          _ condition: () async throws -> T?) async throws -> T {
    let end = ContinuousClock.now + timeout
    while true {
        if let value = try await condition() { return value }
        guard ContinuousClock.now < end else { throw TimedOut(description: "timed out after \(timeout) waiting for \(what)") }
        try await Task.sleep(for: interval)
    }
}
