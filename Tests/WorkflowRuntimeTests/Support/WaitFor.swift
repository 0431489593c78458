import WorkflowRuntime

/// Polls `condition` every 20 ms until it holds; throws ``KeelError`` `.timeout` naming `what`
/// once `timeout` has passed. For tests with a real worker, whose progress takes wall time.
func waitFor(_ what: String, timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws {
    let end = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < end else { throw KeelError(.timeout, "timed out waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}
