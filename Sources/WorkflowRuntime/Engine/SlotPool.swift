import Synchronization

/// A counter of free execution slots (workflow tasks or activity attempts).
final class SlotPool: Sendable {
    private struct State {
        var free: Int
        /// Someone asked for slots while none was free.
        var wanted = false
    }

    private let state: Mutex<State>
    private let onSlotFreedForWaiter: @Sendable () -> Void
    let capacity: Int

    /// - Parameter onSlotFreedForWaiter: called when a slot frees after a request found none
    ///   free, so the loop that asked can claim work again at once (and only then: a release in
    ///   the ordinary course wakes no one).
    init(capacity: Int, onSlotFreedForWaiter: @escaping @Sendable () -> Void = {}) {
        self.capacity = capacity
        state = Mutex(State(free: capacity))
        self.onSlotFreedForWaiter = onSlotFreedForWaiter
    }

    var available: Int { state.withLock { $0.free } }

    /// Slots taken.
    var inUse: Int { capacity - available }

    /// Whether every slot is taken; if so, the next release calls `onSlotFreedForWaiter`.
    func isExhaustedNotifyingOnRelease() -> Bool {
        state.withLock { state in
            guard state.free == 0 else { return false }
            state.wanted = true
            return true
        }
    }

    /// Takes up to `count` slots. - Returns: how many were taken.
    func acquire(upTo count: Int) -> Int {
        state.withLock { state in
            let granted = min(state.free, count)
            state.free -= granted
            if granted == 0 && count > 0 { state.wanted = true }
            return granted
        }
    }

    func release(_ count: Int = 1) {
        guard count > 0 else { return }
        let wakeWaiter = state.withLock { state in
            state.free += count
            defer { state.wanted = false }
            return state.wanted
        }
        if wakeWaiter { onSlotFreedForWaiter() }
    }
}
