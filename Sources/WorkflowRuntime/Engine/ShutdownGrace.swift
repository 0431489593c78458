import Synchronization

/// The end of a stopping worker's grace period: activity attempts still running then are
/// cancelled and given back (``ActivityReport/Outcome/released(_:)``). Waiters wake once, when
/// it ends; a waiter that is cancelled first stops waiting.
final class ShutdownGrace: Sendable {
    private struct State {
        var ended = false
        var waiters: [Int: CheckedContinuation<Void, Error>] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    /// Ends the grace period and wakes every waiter.
    func end() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Error>] in
            state.ended = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when the grace period ends. - Throws: `CancellationError` if cancelled first.
    func wait() async throws {
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Bool in
                    if state.ended || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }
}

/// Thrown out of an activity attempt that was still running when its worker's grace period ended.
struct WorkerShutdownError: Error, CustomStringConvertible {
    var grace: Duration
    var description: String { "the worker shut down and its grace period of \(grace) passed" }
}
