/// Settings of a worker; plain values with defaults.
public struct WorkerConfiguration: Sendable {
    /// Identifies this worker in leases and logs.
    public var identity: String
    /// Workflow tasks processed at once.
    public var workflowTaskSlots: Int
    /// Activity attempts run at once.
    public var activityTaskSlots: Int
    /// How often idle loops look for work other processes created (in-process work wakes them at once).
    public var pollInterval: Duration
    /// Lease on a workflow task; a crashed worker's task is taken over after it.
    public var workflowTaskLease: Duration
    /// Lease on an activity attempt whose options give no start-to-close timeout.
    public var defaultActivityLease: Duration
    /// Suspended runs kept in memory (sticky execution).
    public var maximumCachedRuns: Int
    /// Run activities at once on the worker that scheduled them.
    public var eagerActivities: Bool
    /// Refuse new approval requests that name no approvers (anyone could decide them): the
    /// workflow task fails and the run is blocked with the reason, until the code names approvers.
    public var requiresApprovers: Bool
    /// Claims in a row of one workflow task that did not finish (each claimer crashed, hung or was
    /// killed before committing) after which the run is blocked with the reason instead of being
    /// processed again: a run whose code or input crashes the process takes down a few workers,
    /// not every worker on every restart. Blocked runs are retried when a worker starts. A claimer
    /// that reports back after its lease expired (a slow worker, not a lost one) does not count.
    public var workflowTaskClaimLimit: Int
    /// How long a stopping worker lets its running activity attempts finish. They see
    /// ``ActivityContext/isWorkerShuttingDown`` at once; when the grace period ends, those still
    /// running are cancelled and given back for another worker at once, the attempt not counted.
    public var shutdownGrace: Duration
    /// The task queues this worker serves: it claims workflow tasks and activities of these only
    /// (see ``TaskQueue``).
    public var taskQueues: [String]

    public init(
        identity: String = WorkerConfiguration.defaultIdentity(),
        workflowTaskSlots: Int = 64,
        activityTaskSlots: Int = 128,
        pollInterval: Duration = .milliseconds(200),
        workflowTaskLease: Duration = .seconds(10),
        defaultActivityLease: Duration = .seconds(60),
        maximumCachedRuns: Int = 10_000,
        eagerActivities: Bool = true,
        requiresApprovers: Bool = false,
        workflowTaskClaimLimit: Int = 5,
        shutdownGrace: Duration = .seconds(30),
        taskQueues: [String] = [TaskQueue.default]
    ) {
        self.identity = identity
        self.workflowTaskSlots = workflowTaskSlots
        self.activityTaskSlots = activityTaskSlots
        self.pollInterval = pollInterval
        self.workflowTaskLease = workflowTaskLease
        self.defaultActivityLease = defaultActivityLease
        self.maximumCachedRuns = maximumCachedRuns
        self.eagerActivities = eagerActivities
        self.requiresApprovers = requiresApprovers
        self.workflowTaskClaimLimit = workflowTaskClaimLimit
        self.shutdownGrace = shutdownGrace
        self.taskQueues = taskQueues
    }

    /// The largest slot count accepted for workflow tasks or activities.
    public static let maximumSlots = 100_000

    /// Checks every setting: slots and cache size at least 1 (and at most ``maximumSlots``), a poll
    /// interval from 1 ms to an hour (zero would poll in a busy loop), leases above zero and at
    /// most ``Duration/longestAccepted``. ``Worker/run()`` checks it before doing anything.
    /// - Throws: ``KeelError`` `.invalidArgument` naming the setting and the value.
    public func validate() throws {
        func check(_ value: Int, _ name: String, in range: ClosedRange<Int>) throws {
            guard range.contains(value) else {
                throw KeelError(
                    .invalidArgument, "\(name) must be from \(range.lowerBound) to \(range.upperBound), got \(value)")
            }
        }
        try check(workflowTaskSlots, "workflow task slots", in: 1...Self.maximumSlots)
        try check(activityTaskSlots, "activity task slots", in: 1...Self.maximumSlots)
        try check(maximumCachedRuns, "cached runs", in: 1...10_000_000)
        try check(workflowTaskClaimLimit, "the workflow task claim limit", in: 2...1000)
        guard pollInterval >= .milliseconds(1), pollInterval <= .seconds(3600) else {
            throw KeelError(.invalidArgument, "the poll interval must be from 1 ms to 1 hour, got \(pollInterval)")
        }
        do {
            _ = try workflowTaskLease.checked("the workflow task lease", allowsZero: false)
            _ = try defaultActivityLease.checked("the default activity lease", allowsZero: false)
            _ = try shutdownGrace.checked("the shutdown grace period")
        } catch let error as InvalidValueError {
            throw KeelError(.invalidArgument, error.description)
        }
        try NameRules.check(identity, as: "the worker identity")
        guard !taskQueues.isEmpty else {
            throw KeelError(.invalidArgument, "a worker must serve at least one task queue")
        }
        for queue in taskQueues { try NameRules.check(queue, as: "the task queue name") }
    }

    /// `host:pid:random`, unique per process.
    public static func defaultIdentity() -> String {
        let host = ProcessInfo.processInfo.hostName
        let pid = ProcessInfo.processInfo.processIdentifier
        return "\(host):\(pid):\(UInt16.random(in: 0...UInt16.max))"
    }
}

import Foundation
