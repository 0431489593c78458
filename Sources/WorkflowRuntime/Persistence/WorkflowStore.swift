import Foundation
import Crypto

/// The one storage seam of the engine, implemented once by ``SQLWorkflowStore`` over a
/// per-backend ``SQLDriver`` (SQLite, PostgreSQL); one conformance suite checks it on both.
///
/// Model: a run has an append-only history, written only by the workflow task that produced or
/// observed the events. Things that happen to a run while no task runs (activity outcomes, timer
/// fires, signals, cancellation) wait in the run's *inbox*; the next workflow task moves them into
/// history in order. A run needs a task while its inbox is not empty (or it has just started).
/// Tasks are claimed with a lease (owner, expiry, token); a commit is fenced by the token and the
/// run's *task version*, which every commit increments — so a stale worker cannot write.
///
/// Every method is one transaction: it happens completely or not at all.
package protocol WorkflowStore: Sendable {
    /// Wakes this process's workers when this process creates work.
    var notifier: WorkNotifier { get }

    /// Applies pending schema migrations; concurrent callers (in any process) apply each once.
    /// - Returns: the names this call applied, decided under the backend's lock (empty when the
    ///   schema was current, e.g. because another process applied them first).
    @discardableResult
    func migrate() async throws -> [String]
    /// Names of the migrations not yet applied (empty when the schema is current).
    func pendingMigrations() async throws -> [String]

    // MARK: Client operations

    /// Creates a run, or returns the open run of that workflow id (idempotent start), as the
    /// request's ``WorkflowIDReusePolicy`` says. When the request carries a first workflow task
    /// (eager start), a created run gets it in the same transaction.
    /// - Throws: `.workflowIDReused` when the policy refuses a new run.
    func startWorkflow(_ request: StartWorkflowRequest) async throws -> StartWorkflowResult
    /// Delivers a signal to the open run of the start's workflow id, starting the run first (as
    /// ``startWorkflow(_:)`` would) when none is open — in one transaction, so the signal is the
    /// first thing a new run's code can receive.
    func signalWithStart(_ start: StartWorkflowRequest, signal: SignalRequest) async throws
        -> (start: StartWorkflowResult, signal: SignalOutcome)
    /// Puts a signal in the open run's inbox, unless its request id was seen for that run.
    /// - Throws: `.workflowNotFound`, `.workflowClosed`.
    func signal(_ request: SignalRequest) async throws -> SignalOutcome
    /// Puts a cancellation request in the open run's inbox.
    func requestCancellation(workflowID: String, reason: String?, now: Date) async throws -> String
    /// Closes the open run at once as terminated, dropping its pending work.
    func terminate(workflowID: String, reason: String, now: Date) async throws -> String

    /// Asks a run parked as `compensationFailed` to retry its failed compensation.
    /// - Throws: `.workflowNotFound`, `.workflowClosed`, `.invalidState` (its compensation did not fail).
    func retryCompensation(workflowID: String, requestedBy: String?, now: Date) async throws -> String

    // MARK: Approvals

    /// Records a decision on a pending approval request and delivers it to the run, or refuses it
    /// (stale, already decided, expired, wrong payload hash, decider not allowed) writing only an
    /// audit entry. Every attempt is audited.
    /// - Throws: `.approvalNotFound`, `.approvalRefused`.
    func decideApproval(_ request: ApprovalDecisionRequest) async throws -> ApprovalRecord
    func approval(id: String) async throws -> ApprovalRecord?
    /// Approval requests, newest first.
    func listApprovals(_ query: ApprovalQuery) async throws -> [ApprovalRecord]
    /// The audit trail of an approval, oldest first.
    func approvalAudit(approvalID: String) async throws -> [ApprovalAuditEntry]

    // MARK: Queries

    /// The open run of `workflowID`, or else its latest run.
    func findRun(workflowID: String) async throws -> WorkflowRun?
    func run(runID: String) async throws -> WorkflowRun?
    /// The run that run `runID` continued as new into, if any.
    func nextRun(after runID: String) async throws -> WorkflowRun?
    func listRuns(_ query: RunQuery) async throws -> [WorkflowRun]
    /// The search attributes of a run, by name.
    func searchAttributes(runID: String) async throws -> [String: SearchAttributeValue]
    /// The kind of values stored under search attribute `name` (`string`, `keywords`, `int`, ...),
    /// or `nil` when no run has it.
    func searchAttributeKind(named name: String) async throws -> String?
    func history(runID: String) async throws -> [HistoryEvent]
    /// The run's inbox events after id `after` (all of them), oldest first.
    func inbox(runID: String, after: Int64?) async throws -> [InboxEvent]
    func pendingWork(runID: String) async throws -> PendingWork

    // MARK: Workflow tasks

    /// Leases up to `limit` runs on `taskQueues` that need a workflow task. Each task carries the
    /// run's inbox (its oldest events, at most ``SQLWorkflowStore/inboxBatch``), and its full
    /// history unless `cachedTaskVersion(runID)` equals the run's task version.
    func claimWorkflowTasks(
        owner: String, limit: Int, lease: Duration, now: Date, taskQueues: [String],
        cachedTaskVersion: @escaping @Sendable (String) -> Int?
    ) async throws -> [WorkflowTask]
    /// Commits a workflow task (see ``WorkflowTaskCompletion``).
    func completeWorkflowTask(_ completion: WorkflowTaskCompletion) async throws -> WorkflowTaskCommitResult
    /// Gives back a workflow task whose commit failed because the database was unreachable: the
    /// worker did not crash, so the claim does not count toward the crash-loop limit, and while
    /// `leaseToken` still holds the lease the run is released to be claimed again at once.
    func releaseWorkflowTask(runID: String, leaseToken: Int64, now: Date) async throws
    /// Parks the run as blocked (a non-determinism or a bug in its code); it keeps its inbox.
    func blockRun(runID: String, leaseToken: Int64, reason: String, now: Date) async throws
    /// Puts blocked runs back to work (after a deploy). - Returns: how many.
    func unblockRuns(now: Date) async throws -> Int

    // MARK: Activity tasks

    /// Leases up to `limit` due activity attempts on `taskQueues`.
    func claimActivityTasks(owner: String, limit: Int, defaultLease: Duration, now: Date, taskQueues: [String])
        async throws -> [ActivityTask]
    /// Records an attempt's outcome. - Returns: `false` if the lease was no longer held (nothing written).
    func reportActivity(_ report: ActivityReport) async throws -> Bool
    /// Records an activity's final outcome and the workflow task that continues the run, in one
    /// transaction, when the run is in step with `continuation.expectedTaskVersion`, its lease is
    /// free and its inbox empty; otherwise records only the outcome (into the inbox).
    func reportActivityAndContinue(_ report: ActivityReport, continuation: WorkflowTaskCompletion) async throws
        -> FastPathResult
    /// Extends an attempt's lease and stores progress. - Returns: `false` if the attempt should stop.
    func heartbeat(runID: String, seq: Int, leaseToken: Int64, details: Payload?, leaseUntil: Date) async throws
        -> HeartbeatResponse

    // MARK: Schedules

    /// - Throws: `.scheduleExists`, `.invalidArgument` (an unknown time zone, a spec that never fires).
    func createSchedule(_ definition: ScheduleDefinition, now: Date) async throws -> ScheduleRecord
    func schedule(id: String) async throws -> ScheduleRecord?
    /// Every schedule, by id.
    func listSchedules() async throws -> [ScheduleRecord]
    /// Pauses (`paused`) or resumes a schedule; a resumed one fires from its next tick after `now`.
    /// - Throws: `.scheduleNotFound`.
    func setSchedulePaused(id: String, paused: Bool, note: String?, now: Date) async throws -> ScheduleRecord
    /// - Throws: `.scheduleNotFound`.
    func deleteSchedule(id: String) async throws
    /// Fires a tick at `now`, honouring the overlap policy. - Throws: `.scheduleNotFound`.
    func triggerSchedule(id: String, now: Date) async throws -> ScheduleTickOutcome
    /// Fires every tick from `from` to `to` (both included) under `overlap`.
    /// - Throws: `.scheduleNotFound`, `.invalidArgument` for more than 10,000 ticks.
    func backfillSchedule(id: String, from: Date, to: Date, overlap: ScheduleOverlapPolicy, now: Date) async throws
        -> [ScheduleTickOutcome]
    /// Fires the ticks of due schedules (and runs buffered ticks whose previous run closed), each
    /// schedule in the transaction that advances it. - Returns: how many schedules it advanced.
    func fireDueSchedules(now: Date, limit: Int) async throws -> Int

    // MARK: Timers

    /// Moves due timers into their runs' inboxes; a worker's own (``WorkflowTaskCompletion/timerOwner``)
    /// only once ``timerOwnerGrace`` past their time: the owner fires them itself, and this pass
    /// stands in when it stopped or lost the run. - Returns: how many fired.
    func fireDueTimers(now: Date, limit: Int) async throws -> Int
    /// Moves the run's timers `seqs` into its inbox now, if they are still waiting: their owner's
    /// way when it cannot continue the run in memory. - Returns: how many fired.
    func fireTimers(_ seqs: [Int], runID: String, now: Date) async throws -> Int
    /// The sticky fast path for timers: records that the run's timers `seqs` fired and the workflow
    /// task that continues the run, in one transaction, when the timers are still waiting and the
    /// run is in step with the continuation (lease free, inbox empty; ``WorkflowTaskCompletion/knownRun``
    /// required). - Returns: the new task version; `nil` when nothing was written (a timer pass
    /// fired one first, or the run moved on): the caller queues the timers (``fireTimers(_:runID:now:)``).
    func fireTimersAndContinue(_ seqs: [Int], continuation: WorkflowTaskCompletion) async throws -> Int?
    /// The earliest time after `after` at which something becomes due (a timer, an activity
    /// retry, a delayed workflow task, a schedule's tick); what is due already is not counted.
    func nextWakeUp(after: Date) async throws -> Date?
}

/// How long past its time a worker's own timer (``WorkflowTaskCompletion/timerOwner``) is left
/// to it before the timer passes fire it (the owner stopped, or lost the run's cache).
package let timerOwnerGrace: TimeInterval = 0.5

extension WorkflowStore {
    /// The earliest time something becomes due, whether it is due already or not (the
    /// time-skipping environment moves its clock there).
    package func nextWakeUp() async throws -> Date? {
        try await nextWakeUp(after: .distantPast)
    }
}

package struct StartWorkflowRequest: Sendable {
    package var workflowID: String
    package var runID: String
    package var workflowType: String
    package var input: Payload
    package var now: Date
    /// The queue of the run's workflow tasks, and of its activities unless their options name one.
    package var taskQueue: String
    /// The run's first workflow task, computed by a worker in this process (eager start); its
    /// expected task version is 0 and it holds no lease.
    package var firstTask: WorkflowTaskCompletion?
    package var idReusePolicy: WorkflowIDReusePolicy
    /// For a child workflow: its parent, the parent's operation that starts it, and its parent-close policy.
    package var parent: ParentLink?
    /// The run's first task is not claimed before this time (a schedule's jitter).
    package var notBefore: Date?
    /// Search attributes the run starts with (a schedule's id and tick).
    package var searchAttributes: [String: SearchAttributeValue] = [:]
    /// The schedule whose tick starts the run: its close wakes the timer loop (a buffered tick).
    package var scheduleID: String?

    package init(
        workflowID: String, runID: String = RunID.make(), workflowType: String, input: Payload, now: Date,
        taskQueue: String = TaskQueue.default, firstTask: WorkflowTaskCompletion? = nil,
        idReusePolicy: WorkflowIDReusePolicy = .allowDuplicate, parent: ParentLink? = nil
    ) {
        self.workflowID = workflowID; self.runID = runID; self.workflowType = workflowType; self.input = input;
        self.now = now
        self.taskQueue = taskQueue; self.firstTask = firstTask; self.idReusePolicy = idReusePolicy
        self.parent = parent
    }
}

/// How a child workflow's run links to its parent.
package struct ParentLink: Sendable {
    package var parent: ParentWorkflowInfo
    package var seq: Int
    package var closePolicy: ParentClosePolicy

    package init(parent: ParentWorkflowInfo, seq: Int, closePolicy: ParentClosePolicy) {
        self.parent = parent; self.seq = seq; self.closePolicy = closePolicy
    }
}

package struct StartWorkflowResult: Sendable {
    package var runID: String
    /// `false` when an open run of that workflow id already existed and was returned.
    package var created: Bool

    package init(runID: String, created: Bool) {
        self.runID = runID
        self.created = created
    }
}

package struct SignalRequest: Sendable {
    package var workflowID: String
    package var name: String
    package var payload: Payload
    /// Deduplicates retries of the same signal within a run.
    package var requestID: String?
    package var now: Date

    package init(workflowID: String, name: String, payload: Payload = .emptyObject, requestID: String? = nil, now: Date)
    {
        self.workflowID = workflowID; self.name = name; self.payload = payload; self.requestID = requestID;
        self.now = now
    }

    /// What a request id binds to: the SHA-256 of the signal's name and payload. A retry carries
    /// the same fingerprint; a different signal under the same request id does not.
    package var fingerprint: String {
        var hash = SHA256()
        hash.update(data: Data(name.utf8))
        hash.update(data: Data([0]))
        hash.update(data: payload.data)
        return hash.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// The error for a request id that already carried a different signal.
    package func reusedRequestIDError(_ requestID: String) -> KeelError {
        KeelError(
            .requestIDReused,
            "request id '\(requestID)' was already used for a different signal to workflow "
                + "'\(workflowID)' (another name or payload): a retry must resend the same signal; a new signal "
                + "needs a new request id"
        )
    }
}

/// An event waiting in a run's inbox.
package struct InboxEvent: Sendable, Hashable {
    package var id: Int64
    package var timestamp: Date
    package var kind: HistoryEvent.Kind

    package init(id: Int64, timestamp: Date, kind: HistoryEvent.Kind) {
        self.id = id; self.timestamp = timestamp; self.kind = kind
    }
}

/// A leased workflow task.
package struct WorkflowTask: Sendable {
    package var runID: String
    package var workflowID: String
    package var workflowType: String
    package var leaseToken: Int64
    package var taskVersion: Int
    /// The full history, or `nil` when the claimer's cached execution is in step.
    package var history: [HistoryEvent]?
    package var inbox: [InboxEvent]
    /// Claims of this task in a row, this one included, that ended in no commit and no block: more
    /// than one means earlier claimers lost their lease (crashed, hung, killed). Reset by a commit.
    package var claims: Int
    /// Whether more events wait in the inbox than a task takes (``SQLWorkflowStore/inboxBatch``):
    /// the rest go to the next task — or, if this one closes the run, are read with
    /// ``WorkflowStore/inbox(runID:after:)`` first.
    package var inboxTruncated: Bool
    /// What the run's row holds that never changes, for this task's commit and later fast paths.
    package var constants: RunConstants?
    /// How many events the run's inbox had received when the task was claimed
    /// (``WorkflowTaskCompletion/claimedInboxVersion``).
    package var inboxVersion: Int64

    package init(
        runID: String, workflowID: String, workflowType: String, leaseToken: Int64, taskVersion: Int,
        history: [HistoryEvent]?, inbox: [InboxEvent], claims: Int = 1, inboxTruncated: Bool = false,
        constants: RunConstants? = nil, inboxVersion: Int64 = 0
    ) {
        self.runID = runID; self.workflowID = workflowID; self.workflowType = workflowType; self.leaseToken = leaseToken
        self.taskVersion = taskVersion; self.history = history; self.inbox = inbox; self.claims = claims
        self.inboxTruncated = inboxTruncated; self.constants = constants; self.inboxVersion = inboxVersion
    }
}

/// What a run's row holds that never changes once the run exists. A worker keeping the run's
/// execution in memory knows it (from the run's start or a claim), so its fast-path commits need
/// not read the row first (``WorkflowTaskCompletion/knownRun``).
package struct RunConstants: Sendable, Hashable {
    /// The run's task queue: its activities' queue unless their options name another.
    package var taskQueue: String
    /// Whether a schedule's tick started the run (its close may let a buffered tick start).
    package var startedBySchedule: Bool

    package init(taskQueue: String, startedBySchedule: Bool) {
        self.taskQueue = taskQueue
        self.startedBySchedule = startedBySchedule
    }
}

/// The run as a fast path's cached execution knows it while in step with the store.
package struct KnownRun: Sendable, Hashable {
    /// Events in the run's history before the commit's.
    package var historyLength: Int
    package var constants: RunConstants

    package init(historyLength: Int, constants: RunConstants) {
        self.historyLength = historyLength
        self.constants = constants
    }
}

/// The lease an eagerly dispatched activity is created with.
package struct ActivityLease: Sendable, Hashable {
    package var owner: String
    package var token: Int64
    package var expiresAt: Date

    package init(owner: String, token: Int64, expiresAt: Date) {
        self.owner = owner; self.token = token; self.expiresAt = expiresAt
    }
}

/// What a workflow task commits. The store derives activity tasks, timers and the run's closing
/// from `events` (see ``CommitPlan``).
package struct WorkflowTaskCompletion: Sendable {
    package var runID: String
    package var workflowID: String
    /// The claimed lease; `nil` for the sticky fast path
    /// (``WorkflowStore/reportActivityAndContinue(_:continuation:)``).
    package var leaseToken: Int64?
    package var expectedTaskVersion: Int
    /// Inbox entries up to this id were applied and move into history (as the first matching `events`).
    package var consumedInboxThrough: Int64?
    package var events: [(kind: HistoryEvent.Kind, timestamp: Date)]
    /// Activities (by sequence number) leased at once to the committing worker.
    package var eagerLeases: [Int: ActivityLease]
    /// Whether the run has approval requests still waiting for a decision: if the task closes the
    /// run or starts its compensation, the store withdraws them (and skips that work otherwise).
    package var hasPendingApprovals: Bool
    /// The run's parent, for a child workflow: a closing commit tells it (and locks it first).
    package var parent: ParentWorkflowInfo?
    /// Whether the run started child workflows: a closing commit applies their parent-close policy.
    package var hasChildren: Bool
    /// The run as the committing worker's execution knows it: the store may then check the fence
    /// within the commit's writes instead of reading the run's row first. `nil`: the store reads it.
    package var knownRun: KnownRun?
    /// For a claimed task with ``knownRun``: the run's inbox version its claim read
    /// (``WorkflowTask/inboxVersion``); an event queued since then makes the store read the row.
    package var claimedInboxVersion: Int64?
    /// Whether events the claim saw in the inbox stay there (beyond those the task took): the run
    /// then needs another task.
    package var leavesInboxEvents: Bool
    /// The worker that keeps the run in memory after this commit and fires the timers it starts
    /// itself (``WorkflowStore/fireTimersAndContinue(_:continuation:)``): the timer passes leave
    /// those to it until ``timerOwnerGrace`` past their time. `nil`: the passes fire them when due.
    package var timerOwner: String?
    package var now: Date

    package init(
        runID: String, workflowID: String, leaseToken: Int64?, expectedTaskVersion: Int, consumedInboxThrough: Int64?,
        events: [(kind: HistoryEvent.Kind, timestamp: Date)], eagerLeases: [Int: ActivityLease],
        hasPendingApprovals: Bool = false, parent: ParentWorkflowInfo? = nil, hasChildren: Bool = false,
        knownRun: KnownRun? = nil, claimedInboxVersion: Int64? = nil, leavesInboxEvents: Bool = false,
        timerOwner: String? = nil, now: Date
    ) {
        self.runID = runID; self.workflowID = workflowID; self.leaseToken = leaseToken;
        self.expectedTaskVersion = expectedTaskVersion
        self.consumedInboxThrough = consumedInboxThrough; self.events = events; self.eagerLeases = eagerLeases
        self.hasPendingApprovals = hasPendingApprovals; self.parent = parent; self.hasChildren = hasChildren
        self.knownRun = knownRun; self.claimedInboxVersion = claimedInboxVersion
        self.leavesInboxEvents = leavesInboxEvents; self.timerOwner = timerOwner; self.now = now
    }
}

package enum WorkflowTaskCommitResult: Sendable, Equatable {
    case committed(taskVersion: Int)
    /// Nothing was written: the lease was lost, or a signal arrived while the task would close the run.
    case rejected(reason: String)
}

package enum FastPathResult: Sendable, Equatable {
    case continued(taskVersion: Int)
    /// The run was not in step; only the activity outcome was recorded (into the inbox).
    case outcomeOnly
    /// The activity lease was no longer held; nothing was written.
    case stale
}

/// A leased activity attempt.
package struct ActivityTask: Sendable {
    package var runID: String
    package var workflowID: String
    package var seq: Int
    package var activityName: String
    package var input: Payload
    package var idempotencyKey: String
    package var options: ActivityOptions
    package var attempt: Int
    package var scheduledAt: Date
    package var leaseToken: Int64
    package var heartbeatDetails: Payload?

    package init(
        runID: String, workflowID: String, seq: Int, activityName: String, input: Payload, idempotencyKey: String,
        options: ActivityOptions, attempt: Int, scheduledAt: Date, leaseToken: Int64, heartbeatDetails: Payload?
    ) {
        self.runID = runID; self.workflowID = workflowID; self.seq = seq; self.activityName = activityName;
        self.input = input
        self.idempotencyKey = idempotencyKey; self.options = options; self.attempt = attempt;
        self.scheduledAt = scheduledAt
        self.leaseToken = leaseToken; self.heartbeatDetails = heartbeatDetails
    }
}

/// The outcome of one activity attempt.
package struct ActivityReport: Sendable {
    package enum Outcome: Sendable {
        case completed(Payload)
        case failed(ErrorInfo)
        /// Failed; try again at this time.
        case retry(ErrorInfo, at: Date)
        /// Given back unfinished (its worker is shutting down): visible to other workers at once,
        /// and not counted as an attempt.
        case released(ErrorInfo)
        /// Stopped because its workflow code cancelled it (``HeartbeatResponse/cancellationRequested``).
        case cancelled
    }

    package var runID: String
    package var seq: Int
    package var leaseToken: Int64
    package var attempt: Int
    package var outcome: Outcome
    package var now: Date

    package init(runID: String, seq: Int, leaseToken: Int64, attempt: Int, outcome: Outcome, now: Date) {
        self.runID = runID; self.seq = seq; self.leaseToken = leaseToken; self.attempt = attempt;
        self.outcome = outcome; self.now = now
    }

    /// The final failure of an attempt whose stored row cannot be decoded (corrupted, or written
    /// by another version): the run's code gets an ``ActivityFailure`` naming why, instead of
    /// one bad row stopping every claim.
    package static func undecodableRow(
        runID: String, seq: Int, leaseToken: Int64, attempt: Int, error: Error, now: Date
    ) -> ActivityReport {
        ActivityReport(
            runID: runID, seq: seq, leaseToken: leaseToken, attempt: attempt,
            outcome: .failed(
                ErrorInfo(
                    type: "UndecodableActivityRow",
                    message: "the stored options of activity #\(seq) cannot be decoded: \(error)",
                    nonRetryable: true)), now: now)
    }

    /// The inbox/history event a final outcome becomes (`nil` for a retry).
    package var event: HistoryEvent.Kind? {
        switch outcome {
        case .completed(let result): .activityCompleted(seq: seq, result: result, attempt: attempt)
        case .failed(let failure): .activityFailed(seq: seq, failure: failure, attempts: attempt)
        case .cancelled: .activityCancelled(seq: seq)
        case .retry, .released: nil
        }
    }
}

/// What a heartbeat learns about its attempt.
package enum HeartbeatResponse: Sendable, Equatable {
    /// The lease is extended: go on.
    case leaseHeld
    /// Another worker holds the attempt, or its run closed: stop; the outcome will be refused.
    case leaseLost
    /// The workflow code cancelled the activity: stop, and report ``ActivityReport/Outcome/cancelled``.
    case cancellationRequested
}

/// Why a claimed run is parked as blocked instead of processed: its stored history or inbox
/// cannot be decoded. The claim goes on with the other runs.
package func undecodableHistoryReason(runID: String, error: Error) -> String {
    "the stored history or inbox of run \(runID) cannot be decoded (corrupted, or written by another version): \(error)"
}

extension WorkflowStore {
    /// Leases workflow tasks of the default queue.
    package func claimWorkflowTasks(
        owner: String, limit: Int, lease: Duration, now: Date,
        cachedTaskVersion: @escaping @Sendable (String) -> Int?
    ) async throws -> [WorkflowTask] {
        try await claimWorkflowTasks(
            owner: owner, limit: limit, lease: lease, now: now, taskQueues: [TaskQueue.default],
            cachedTaskVersion: cachedTaskVersion)
    }

    /// Leases activity attempts of the default queue.
    package func claimActivityTasks(owner: String, limit: Int, defaultLease: Duration, now: Date) async throws
        -> [ActivityTask]
    {
        try await claimActivityTasks(
            owner: owner, limit: limit, defaultLease: defaultLease, now: now, taskQueues: [TaskQueue.default])
    }
}
