import Synchronization

/// A counter of free execution slots (workflow tasks or activity attempts).
final class SlotPool: Sendable {
    private let free: Mutex<Int>

    init(capacity: Int) {
        free = Mutex(capacity)
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
        free.withLock { $0 += count }
    }
}
