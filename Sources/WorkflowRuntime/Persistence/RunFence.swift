/// What a store reads from a run's row, under its write lock, to decide whether a commit may land.
/// Both backends decide with these rules, so they cannot drift apart.
package struct RunFence {
    package var status: RunStatus
    package var taskVersion: Int
    package var historyLength: Int
    package var leaseToken: Int64?
    package var leaseExpiresAt: Double?
    /// Whether anything may wait in the run's inbox (it needs a task, or its inbox is not empty);
    /// `false` is certain, `true` is checked again where it matters.
    package var hasInbox: Bool
    /// Whether a schedule's tick started the run (its close may let a buffered tick start).
    package var startedBySchedule: Bool
    /// The run's task queue: its activities' queue unless their options name another.
    package var taskQueue: String

    package init(
        status: RunStatus, taskVersion: Int, historyLength: Int, leaseToken: Int64?, leaseExpiresAt: Double?,
        hasInbox: Bool, startedBySchedule: Bool = false, taskQueue: String
    ) {
        self.status = status; self.taskVersion = taskVersion; self.historyLength = historyLength
        self.leaseToken = leaseToken; self.leaseExpiresAt = leaseExpiresAt; self.hasInbox = hasInbox
        self.startedBySchedule = startedBySchedule; self.taskQueue = taskQueue
    }

    /// The state of a run just inserted by its start.
    package static func started(taskQueue: String) -> RunFence {
        RunFence(
            status: .running, taskVersion: 0, historyLength: 1, leaseToken: nil, leaseExpiresAt: nil, hasInbox: false,
            taskQueue: taskQueue)
    }

    /// A leased workflow task may commit while the run is open, unchanged since the claim, and still its lease.
    package func admits(_ completion: WorkflowTaskCompletion) -> Bool {
        status == .running && taskVersion == completion.expectedTaskVersion && leaseToken == completion.leaseToken
    }

    /// The sticky fast path may commit while the run is unchanged since the worker's last commit,
    /// no one holds its lease, and nothing waits in its inbox.
    package func admitsFastPath(_ continuation: WorkflowTaskCompletion, now: Double) -> Bool {
        status == .running && taskVersion == continuation.expectedTaskVersion
            && (leaseToken == nil || leaseExpiresAt ?? 0 <= now) && !hasInbox
    }
}
