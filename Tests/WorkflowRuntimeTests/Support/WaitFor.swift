import KeelTestSupport

/// Polls `condition` every 20 ms until it holds, failing with `what` once `timeout` has passed
/// (``eventually(_:timeout:interval:_:)`` for a yes-or-no condition).
func waitFor(_ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
    try await eventually(what, timeout: timeout, interval: .milliseconds(20)) { try await condition() ? () : nil }
}
