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

    public init(
        identity: String = WorkerConfiguration.defaultIdentity(),
        workflowTaskSlots: Int = 64,
        activityTaskSlots: Int = 128,
        pollInterval: Duration = .milliseconds(200),
        workflowTaskLease: Duration = .seconds(10),
        defaultActivityLease: Duration = .seconds(60),
        maximumCachedRuns: Int = 10_000,
        eagerActivities: Bool = true
    ) {
        self.identity = identity
        self.workflowTaskSlots = workflowTaskSlots
        self.activityTaskSlots = activityTaskSlots
        self.pollInterval = pollInterval
        self.workflowTaskLease = workflowTaskLease
        self.defaultActivityLease = defaultActivityLease
        self.maximumCachedRuns = maximumCachedRuns
        self.eagerActivities = eagerActivities
    }

    /// `host:pid:random`, unique per process.
    public static func defaultIdentity() -> String {
        let host = ProcessInfo.processInfo.hostName
        let pid = ProcessInfo.processInfo.processIdentifier
        return "\(host):\(pid):\(UInt16.random(in: 0...UInt16.max))"
    }
}

import Foundation
