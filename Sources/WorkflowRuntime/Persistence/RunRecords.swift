import Foundation

/// Lifecycle state of a run.
///
/// Open: `running`, `blocked` (a bug in its code; fixed by a deploy), `compensationFailed` (a
/// compensation failed for good; an operator retries it). Closed: `completed`, `failed`,
/// `cancelled`, `terminated`, `compensated` (it failed or was cancelled, and every registered
/// compensation ran), and `continuedAsNew` (the next run of its workflow id took over).
public enum RunStatus: String, Sendable, Codable, CaseIterable {
    case running, blocked, compensationFailed, completed, failed, cancelled, terminated, compensated, continuedAsNew

    /// Open runs hold their workflow id.
    public var isOpen: Bool { self == .running || self == .blocked || self == .compensationFailed }

    /// The open statuses as an SQL list, `('running', 'blocked', 'compensationFailed')`: the one
    /// place the stores' SQL takes them from (the migrations' partial unique index spells the same).
    package static let openSQLList =
        "(" + allCases.filter(\.isOpen).map { "'\($0.rawValue)'" }.joined(separator: ", ") + ")"
}

/// A run as stored.
public struct WorkflowRun: Sendable, Hashable, Codable {
    public var workflowID: String
    public var runID: String
    public var workflowType: String
    public var status: RunStatus
    public var input: Payload
    public var result: Payload?
    public var failure: ErrorInfo?
    /// Why a blocked run is blocked (non-determinism, a task failure), or a close reason.
    public var statusReason: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var closedAt: Date?
    public var historyLength: Int
    /// The run of the same workflow id that continued as new into this one.
    public var previousRunID: String?
    /// For a child workflow: the parent that started it (or the run it continued from).
    public var parent: ParentWorkflowInfo?
    /// Where the process stands, as its code last set it (``WorkflowContext/setStage(_:)``).
    public var stage: String?

    public init(
        workflowID: String, runID: String, workflowType: String, status: RunStatus, input: Payload,
        result: Payload? = nil, failure: ErrorInfo? = nil, statusReason: String? = nil,
        createdAt: Date, updatedAt: Date, closedAt: Date? = nil, historyLength: Int, previousRunID: String? = nil,
        parent: ParentWorkflowInfo? = nil, stage: String? = nil
    ) {
        self.workflowID = workflowID; self.runID = runID; self.workflowType = workflowType; self.status = status
        self.input = input; self.result = result; self.failure = failure; self.statusReason = statusReason
        self.createdAt = createdAt; self.updatedAt = updatedAt; self.closedAt = closedAt;
        self.historyLength = historyLength; self.previousRunID = previousRunID; self.parent = parent
        self.stage = stage
    }
}

public enum SignalOutcome: Sendable, Hashable {
    case delivered(runID: String)
    /// A signal with the same request id was already accepted by this run; nothing was written.
    case duplicate(runID: String)
}

/// Filters for listing runs, newest first, with keyset paging.
public struct RunQuery: Sendable {
    public var status: RunStatus?
    public var workflowType: String?
    /// Only the runs of this workflow id (its current run and the ones before it).
    public var workflowID: String?
    /// Only the children started by this workflow's runs.
    public var parentWorkflowID: String?
    /// Only the children started by this run.
    public var parentRunID: String?
    /// Only runs in this stage.
    public var stage: String?
    /// Only runs whose search attributes hold each of these values (for a keyword list: the keyword).
    public var searchAttributes: [String: SearchAttributeValue]
    /// Only each workflow id's latest run (one row per workflow id: a chain of runs continued as
    /// new, or an id started again after it closed, shows once). Filters apply to that run.
    public var latestRunPerWorkflow: Bool
    public var limit: Int
    /// Return runs created before this one (the last run of the previous page).
    public var after: (createdAt: Date, runID: String)?

    public init(
        status: RunStatus? = nil, workflowType: String? = nil, workflowID: String? = nil,
        parentWorkflowID: String? = nil, parentRunID: String? = nil, stage: String? = nil,
        searchAttributes: [String: SearchAttributeValue] = [:],
        latestRunPerWorkflow: Bool = false, limit: Int = 100, after: (createdAt: Date, runID: String)? = nil
    ) {
        self.status = status; self.workflowType = workflowType; self.workflowID = workflowID
        self.parentWorkflowID = parentWorkflowID; self.parentRunID = parentRunID; self.stage = stage
        self.searchAttributes = searchAttributes
        self.latestRunPerWorkflow = latestRunPerWorkflow; self.limit = limit; self.after = after
    }
}

/// What a run is waiting on, for operators.
public struct PendingWork: Sendable, Codable {
    public struct Activity: Sendable, Codable {
        public var seq: Int
        public var activityName: String
        /// The queue whose workers run it: an attempt waits here while no worker serves it.
        public var taskQueue: String
        public var attempt: Int
        public var nextAttemptAt: Date
        public var leaseOwner: String?
        public var lastError: String?

        package init(
            seq: Int, activityName: String, taskQueue: String, attempt: Int, nextAttemptAt: Date,
            leaseOwner: String?, lastError: String?
        ) {
            self.seq = seq; self.activityName = activityName; self.taskQueue = taskQueue; self.attempt = attempt
            self.nextAttemptAt = nextAttemptAt; self.leaseOwner = leaseOwner; self.lastError = lastError
        }
    }
    public struct Timer: Sendable, Codable {
        public var seq: Int
        public var fireAt: Date

        package init(seq: Int, fireAt: Date) {
            self.seq = seq; self.fireAt = fireAt
        }
    }
    public struct Inbox: Sendable, Codable {
        public var kind: String
        public var detail: String
        public var receivedAt: Date

        package init(kind: String, detail: String, receivedAt: Date) {
            self.kind = kind; self.detail = detail; self.receivedAt = receivedAt
        }
    }
    public var activities: [Activity]
    public var timers: [Timer]
    public var inbox: [Inbox]

    package init(activities: [Activity], timers: [Timer], inbox: [Inbox]) {
        self.activities = activities; self.timers = timers; self.inbox = inbox
    }
}

/// Task queues: which workers run what. A run's workflow tasks belong to the queue it was started
/// on, its activities to that queue unless their options name another; a worker claims only from
/// the queues it serves (``WorkerConfiguration/taskQueues``, `worker run --task-queue`). Work on a
/// queue no worker serves waits, visible in `worker show`.
public enum TaskQueue {
    /// The queue of runs and activities that name none, and the one workers serve by default.
    public static let `default` = "default"
}
