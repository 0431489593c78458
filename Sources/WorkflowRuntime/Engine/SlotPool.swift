import Synchronization

/// A counter of free execution slots (workflow tasks or activity attempts).
final class SlotPool: Sendable {
    private let free: Mutex<Int>
    private let onFreedWhenExhausted: @Sendable () -> Void

    /// - Parameter onFreedWhenExhausted: called when a release ends a moment with no free slot, so
    ///   a loop waiting for one can claim work again at once.
    init(capacity: Int, onFreedWhenExhausted: @escaping @Sendable () -> Void = {}) {
        free = Mutex(capacity)
        self.onFreedWhenExhausted = onFreedWhenExhausted
    }

    var available: Int { free.withLock { $0 } }

    /// Takes up to `count` slots. - Returns: how many were taken.
    func acquire(upTo count: Int) -> Int {
        free.withLock { free in
            let granted = min(free, count)
            free -= granted
            return granted
        }
    }

    func release(_ count: Int = 1) {
        guard count > 0 else { return }
        let wasExhausted = free.withLock { free in
            defer { free += count }
            return free == 0
        }
        if wasExhausted { onFreedWhenExhausted() }
    }
}
