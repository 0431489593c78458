import Synchronization

/// The end of a stopping worker's grace period: activity attempts still running then are
/// cancelled and given back (``ActivityReport/Outcome/released(_:)``). Each running attempt
/// registers how to stop it; ending the grace period calls them all, and an attempt that
/// registers afterwards is stopped at once.
final class ShutdownGrace: Sendable {
    private struct State {
        var ended = false
        var stops: [Int: @Sendable () -> Void] = [:]
        var nextID = 0
    }

    private let state = Mutex(State())

    /// Ends the grace period: stops every registered attempt.
    func end() {
        let stops = state.withLock { state -> [@Sendable () -> Void] in
            state.ended = true
            defer { state.stops.removeAll() }
            return Array(state.stops.values)
        }
        for stop in stops { stop() }
    }

    /// Registers how to stop a running attempt. - Returns: the id to unregister it with, or
    /// `nil` when the grace period has already ended (`stop` was then called).
    func register(_ stop: @escaping @Sendable () -> Void) -> Int? {
        let id = state.withLock { state -> Int? in
            guard !state.ended else { return nil }
            defer { state.nextID += 1 }
            state.stops[state.nextID] = stop
            return state.nextID
        }
        if id == nil { stop() }
        return id
    }

    /// Forgets a finished attempt.
    func unregister(_ id: Int?) {
        guard let id else { return }
        _ = state.withLock { $0.stops.removeValue(forKey: id) }
    }
}

/// Thrown out of an activity attempt that was still running when its worker's grace period ended.
struct WorkerShutdownError: Error, CustomStringConvertible {
    var grace: Duration
    var description: String { "the worker shut down and its grace period of \(grace) passed" }
}
