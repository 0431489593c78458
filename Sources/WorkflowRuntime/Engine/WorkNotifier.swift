import Synchronization

/// Wakes waiting worker loops and result waiters in this process the moment work appears or a
/// run closes. Other processes are reached by polling (SQLite) or LISTEN/NOTIFY (PostgreSQL),
/// which feed the same notifier.
public final class WorkNotifier: Sendable {
    /// A kind of work a worker loop waits for.
    public enum Topic: Int, Sendable, CaseIterable {
        case workflowTasks, activityTasks, timers
    }

    private struct Waiter {
        var id: Int
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var pending: [Bool] = Array(repeating: false, count: Topic.allCases.count)
        var topicWaiters: [[Waiter]] = Array(repeating: [], count: Topic.allCases.count)
        var closeWaiters: [String: [Waiter]] = [:]
        var nextID = 0
        /// Waits that timed out before they were registered.
        var expired: Set<Int> = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Records that work of this kind exists and wakes the loops waiting for it.
    public func notify(_ topic: Topic) {
        let waiters = state.withLock { state -> [Waiter] in
            let waiters = state.topicWaiters[topic.rawValue]
            state.topicWaiters[topic.rawValue].removeAll()
            state.pending[topic.rawValue] = waiters.isEmpty
            return waiters
        }
        for waiter in waiters { waiter.continuation.resume() }
    }

    /// Wakes whoever waits for `runID` to close.
    public func runClosed(_ runID: String) {
        let waiters = state.withLock { $0.closeWaiters.removeValue(forKey: runID) ?? [] }
        for waiter in waiters { waiter.continuation.resume() }
    }

    /// Returns when `topic` is notified (or was since the last wait), or after `timeout`.
    func wait(for topic: Topic, timeout: Duration) async {
        let consumed = state.withLock { state -> Bool in
            defer { state.pending[topic.rawValue] = false }
            return state.pending[topic.rawValue]
        }
        if consumed { return }
        await waitWithTimeout(timeout) { state, id, continuation in
            state.topicWaiters[topic.rawValue].append(Waiter(id: id, continuation: continuation))
        } remove: { state, id in
                guard let index = state.topicWaiters[topic.rawValue].firstIndex(where: { $0.id == id }) else { return nil }
                return state.topicWaiters[topic.rawValue].remove(at: index).continuation
        }
    }

    /// Returns when `runID` is reported closed, or after `timeout`.
    func waitForClose(of runID: String, timeout: Duration) async {
        await waitWithTimeout(timeout) { state, id, continuation in
            state.closeWaiters[runID, default: []].append(Waiter(id: id, continuation: continuation))
        } remove: { state, id in
                guard let index = state.closeWaiters[runID]?.firstIndex(where: { $0.id == id }) else { return nil }
                let waiter = state.closeWaiters[runID]!.remove(at: index)
                if state.closeWaiters[runID]!.isEmpty { state.closeWaiters[runID] = nil }
                return waiter.continuation
        }
    }

    private func waitWithTimeout(
        _ timeout: Duration,
        add: (inout State, Int, CheckedContinuation<Void, Never>) -> Void,
        remove: @escaping @Sendable (inout State, Int) -> CheckedContinuation<Void, Never>?
    ) async {
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        let expire: @Sendable () -> Void = { [self] in
            let continuation = self.state.withLock { state in
                let continuation = remove(&state, id)
                if continuation == nil { state.expired.insert(id) }
                return continuation
            }
            continuation?.resume()
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: timeout)
                expire()
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let expired = state.withLock { state -> Bool in
                        if state.expired.remove(id) != nil { return true }
                        add(&state, id, continuation)
                        return false
                    }
                    if expired { continuation.resume() }
                }
            } onCancel: {
                expire()
            }
            group.cancelAll()
        }
        // A wait that ended by notification leaves its timeout's mark behind; clear it.
        state.withLock { _ = $0.expired.remove(id) }
    }
}
