import Synchronization

/// Suspended runs kept in memory by the worker that last ran them (sticky execution).
///
/// An entry is checked out while a task uses it, so two tasks never drive one execution at
/// once. Correctness never depends on the cache: a run not found here is replayed from history.
final class ExecutionCache: Sendable {
    private let capacity: Int
    private let entries = Mutex<[String: WorkflowExecution]>([:])

    init(capacity: Int) {
        self.capacity = capacity
    }

    /// The task version of the cached (not checked-out) execution of `runID`.
    func taskVersion(of runID: String) -> Int? {
        entries.withLock { $0[runID]?.taskVersion }
    }

    /// Removes and returns the execution of `runID`, if cached.
    func checkOut(_ runID: String) -> WorkflowExecution? {
        entries.withLock { $0.removeValue(forKey: runID) }
    }

    /// Caches an execution, evicting another one when full.
    func checkIn(_ execution: WorkflowExecution) {
        let displaced = entries.withLock { entries -> [WorkflowExecution] in
            var displaced: [WorkflowExecution] = []
            if let previous = entries.updateValue(execution, forKey: execution.info.runID), previous !== execution {
                displaced.append(previous)
            }
            while entries.count > capacity, let victim = entries.first(where: { $0.key != execution.info.runID }) {
                entries.removeValue(forKey: victim.key)
                displaced.append(victim.value)
            }
            return displaced
        }
        for execution in displaced { execution.evict() }
    }

    /// Evicts everything (on shutdown).
    func removeAll() {
        let all = entries.withLock { entries -> [WorkflowExecution] in
            defer { entries.removeAll() }
            return Array(entries.values)
        }
        for execution in all { execution.evict() }
    }
}
