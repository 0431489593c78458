/// What a store reads from a run's row, under its write lock, to decide whether a commit may land.
/// Both backends decide with these rules, so they cannot drift apart.
struct RunFence {
    var status: RunStatus
    var taskVersion: Int
    var historyLength: Int
    var leaseToken: Int64?
    var leaseExpiresAt: Double?
    /// Whether anything waits in the run's inbox.
    var hasInbox: Bool

    /// The state of a run just inserted by its start.
    static let started = RunFence(status: .running, taskVersion: 0, historyLength: 1, leaseToken: nil, leaseExpiresAt: nil, hasInbox: false)

    /// A leased workflow task may commit while the run is open, unchanged since the claim, and still its lease.
    func admits(_ completion: WorkflowTaskCompletion) -> Bool {
        status == .running && taskVersion == completion.expectedTaskVersion && leaseToken == completion.leaseToken
    }

    /// The sticky fast path may commit while the run is unchanged since the worker's last commit,
    /// no one holds its lease, and nothing waits in its inbox.
    func admitsFastPath(_ continuation: WorkflowTaskCompletion, now: Double) -> Bool {
        status == .running && taskVersion == continuation.expectedTaskVersion
            && (leaseToken == nil || leaseExpiresAt ?? 0 <= now) && !hasInbox
    }
}
