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
        var closeTickets: [String: Set<Int>] = [:]
        var firedTickets: Set<Int> = []
        var closeWaiters: [Int: CheckedContinuation<Void, Never>] = [:]
        /// Results handed to close tickets by ``runClosed(_:result:)``, until their wait takes them.
        var handedResults: [Int: Payload] = [:]
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
    /// - Parameter result: the run's result, when it completed and this process committed its
    ///   close: handed to the waiters, which need not read the run.
    public func runClosed(_ runID: String, result: Payload? = nil) {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard let tickets = state.closeTickets.removeValue(forKey: runID) else { return [] }
            var waiters: [CheckedContinuation<Void, Never>] = []
            for ticket in tickets {
                if let result { state.handedResults[ticket] = result }
                if let waiter = state.closeWaiters.removeValue(forKey: ticket) {
                    waiters.append(waiter)
                } else {
                    state.firedTickets.insert(ticket)
                }
            }
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Interest in a run's closing, registered before the run is read so no closing is missed
    /// between the read and the wait.
    struct CloseTicket {
        var runID: String
        var id: Int
    }

    func closeTicket(for runID: String) -> CloseTicket {
        state.withLock { state in
            defer { state.nextID += 1 }
            state.closeTickets[runID, default: []].insert(state.nextID)
            return CloseTicket(runID: runID, id: state.nextID)
        }
    }

    /// Forgets a ticket that will not be waited on.
    func discard(_ ticket: CloseTicket) {
        state.withLock { state in
            state.closeTickets[ticket.runID]?.remove(ticket.id)
            if state.closeTickets[ticket.runID]?.isEmpty == true { state.closeTickets[ticket.runID] = nil }
            state.firedTickets.remove(ticket.id)
            state.handedResults[ticket.id] = nil
        }
    }

    /// Returns when `topic` is notified (or was since the last wait), or after `timeout`.
    func wait(for topic: Topic, timeout: Duration) async {
        let consumed = state.withLock { state -> Bool in
            defer { state.pending[topic.rawValue] = false }
            return state.pending[topic.rawValue]
        }
        if consumed { return }
        let id = state.withLock { state -> Int in
            defer { state.nextID += 1 }
            return state.nextID
        }
        await waitWithTimeout(timeout, id: id) { state, id, continuation in
            state.topicWaiters[topic.rawValue].append(Waiter(id: id, continuation: continuation))
            return true
        } remove: { state, id in
            guard let index = state.topicWaiters[topic.rawValue].firstIndex(where: { $0.id == id }) else { return nil }
            return state.topicWaiters[topic.rawValue].remove(at: index).continuation
        }
    }

    /// Returns when the ticket's run is reported closed (or was since the ticket), or after `timeout`.
    /// The ticket is used up either way.
    /// - Returns: the run's result, if it completed and its close was committed in this process.
    @discardableResult
    func wait(for ticket: CloseTicket, timeout: Duration) async -> Payload? {
        await waitWithTimeout(timeout, id: ticket.id) { state, id, continuation in
            if state.firedTickets.remove(id) != nil { return false }
            state.closeWaiters[id] = continuation
            return true
        } remove: { state, id in
            state.closeWaiters.removeValue(forKey: id)
        }
        let result = state.withLock { $0.handedResults.removeValue(forKey: ticket.id) }
        discard(ticket)
        return result
    }

    private func waitWithTimeout(
        _ timeout: Duration,
        id: Int,
        add: (inout State, Int, CheckedContinuation<Void, Never>) -> Bool,
        remove: @escaping @Sendable (inout State, Int) -> CheckedContinuation<Void, Never>?
    ) async {
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
                        return !add(&state, id, continuation)
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
