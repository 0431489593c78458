import Foundation
import Logging
import Synchronization

/// The work a worker does, one item at a time: process a workflow task, run an activity attempt,
/// fire due timers. The ``Worker`` service runs it in concurrent loops; the time-skipping test
/// environment drives it step by step.
///
/// Fast path: activities scheduled by a task are leased to this worker in the same commit and run
/// at once; when one finishes, the run's cached execution continues in memory and the activity's
/// outcome and the run's next commands are committed together. Timers its runs start are this
/// worker's to fire (``OwnedTimers``): when one is due, the run continues in memory the same way.
package final class WorkflowEngine: Sendable {
    package let store: any WorkflowStore
    package let registry: WorkflowRegistry
    package let clock: any WorkflowClock
    package let configuration: WorkerConfiguration
    let logger: Logger
    let cache: ExecutionCache
    /// The timers this worker fires itself, when it ``ownsTimers``.
    let ownedTimers = OwnedTimers(capacity: OwnedTimers.defaultCapacity)
    /// Whether the timers its runs start are this worker's to fire (``OwnedTimers``): a worker
    /// daemon's are, with a loop that fires them; the time-skipping environment's are left to
    /// the timer passes it drives.
    let ownsTimers: Bool
    let activitySlots: SlotPool
    private let draining = Atomic<Bool>(false)
    /// Ends when a stopping worker's grace period has passed (``endShutdownGrace()``).
    let shutdownGrace = ShutdownGrace()
    /// Attempts inside ``ActivityContext/sleep(for:)``, by a key of the attempt, with the time they sleep until.
    let sleepingActivities = Mutex<[Int: Date]>([:])
    let nextAttemptKey = Atomic<Int>(0)

    /// Activity attempts claimed or leased and not yet reported (each holds an activity slot).
    package var activityAttemptsInFlight: Int { activitySlots.inUse }

    /// Attempts waiting in ``ActivityContext/sleep(for:)`` on the engine's clock for a time still
    /// ahead: when every attempt in flight is, only the clock can move them (the test environment
    /// then skips time). One whose time has come counts as running, even before its task resumes.
    package var activityAttemptsSleeping: Int {
        let now = clock.now()
        return sleepingActivities.withLock { $0.values.count { $0 > now } }
    }

    package init(
        store: any WorkflowStore, registry: WorkflowRegistry, clock: any WorkflowClock,
        configuration: WorkerConfiguration, ownsTimers: Bool = false, logger: Logger
    ) {
        self.store = store
        self.ownsTimers = ownsTimers
        self.registry = registry
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
        self.cache = ExecutionCache(capacity: configuration.maximumCachedRuns)
        let notifier = store.notifier
        self.activitySlots = SlotPool(capacity: configuration.activityTaskSlots) { notifier.notify(.activityTasks) }
    }

    // MARK: - Eager start

    /// Starts a run with its first workflow task computed here and committed in the same transaction.
    /// - Returns: the start's result and the activities leased to this worker (each holds a slot);
    ///   `nil` when the run cannot start eagerly (its code fails at once), so a plain start should be used.
    package func startEagerly(_ request: StartWorkflowRequest) async throws -> (StartWorkflowResult, [ActivityTask])? {
        let definition = try registry.workflow(named: request.workflowType)
        let started = HistoryEvent(
            id: 1, timestamp: request.now,
            kind: .workflowStarted(
                workflowType: request.workflowType, workflowID: request.workflowID, input: request.input))
        guard
            let execution = try? WorkflowExecution.replay(
                [started], runID: request.runID, definition: definition, logger: logger,
                requiresApprovers: configuration.requiresApprovers),
            execution.taskFailure == nil
        else { return nil }
        let events = execution.takeNewEvents()
        let (leases, eager) = leaseEagerActivities(
            events, runID: request.runID, workflowID: request.workflowID, now: request.now)
        var request = request
        request.firstTask = WorkflowTaskCompletion(
            runID: request.runID, workflowID: request.workflowID, leaseToken: nil, expectedTaskVersion: 0,
            consumedInboxThrough: nil,
            events: events, eagerLeases: leases, hasPendingApprovals: execution.hasPendingApprovals,
            hasChildren: execution.hasChildren, timerOwner: timerOwner, now: request.now)
        let result: StartWorkflowResult
        do {
            result = try await store.startWorkflow(request)
        } catch {
            execution.evict()
            activitySlots.release(eager.count)
            throw error
        }
        guard result.created else {
            execution.evict()
            activitySlots.release(eager.count)
            return (result, [])
        }
        execution.runConstants = RunConstants(
            taskQueue: request.taskQueue, startedBySchedule: request.scheduleID != nil)
        keep(execution, version: 1, committed: events)
        return (result, eager)
    }

    // MARK: - Workflow tasks

    package func claimWorkflowTasks(limit: Int) async throws -> [WorkflowTask] {
        let cache = self.cache
        return try await store.claimWorkflowTasks(
            owner: configuration.identity, limit: limit, lease: configuration.workflowTaskLease, now: clock.now(),
            taskQueues: configuration.taskQueues, cachedTaskVersion: { cache.taskVersion(of: $0) })
    }

    /// Replays (or resumes from the cache) the task's run, applies its inbox and commits.
    /// - Returns: activities leased to this worker for eager execution (each holds an activity slot).
    package func process(_ task: WorkflowTask) async -> [ActivityTask] {
        let runMetadata: Logger.Metadata = ["workflow-id": "\(task.workflowID)", "run-id": "\(task.runID)"]
        if task.claims > configuration.workflowTaskClaimLimit {
            let reason =
                "its workflow task was claimed \(task.claims - 1) times in a row without finishing: the workers "
                + "processing it "
                + "crashed, hung or were killed (its code or input may crash the process). Blocked so the other "
                + "runs go on; "
                + "fix the cause and restart a worker, which retries blocked runs"
            logger.error(
                "workflow task keeps losing its workers; run blocked",
                metadata: runMetadata.merging(["reason": "\(reason)"]) { $1 })
            cache.checkOut(task.runID)?.evict()
            try? await store.blockRun(runID: task.runID, leaseToken: task.leaseToken, reason: reason, now: clock.now())
            return []
        }
        let execution: WorkflowExecution
        do {
            execution = try await resume(task)
        } catch {
            let reason = (error as? WorkflowTaskFailure)?.message ?? "\(error)"
            logger.error(
                "workflow task failed; run blocked", metadata: runMetadata.merging(["reason": "\(reason)"]) { $1 })
            try? await store.blockRun(runID: task.runID, leaseToken: task.leaseToken, reason: reason, now: clock.now())
            return []
        }
        var consumedThrough = task.inbox.last?.id
        var leavesInboxEvents = task.inboxTruncated
        for event in Self.deliveryOrder(task.inbox) {
            execution.apply(event.kind, at: event.timestamp)
        }
        if task.inboxTruncated, execution.isFinished, !execution.continuesAsNew {
            // The code closes the run: it must see what waits beyond the batch first (the store
            // refuses to close over an unseen event). A continue-as-new leaves it to the next run.
            do {
                let rest = try await store.inbox(runID: task.runID, after: consumedThrough)
                for event in Self.deliveryOrder(rest) { execution.apply(event.kind, at: event.timestamp) }
                consumedThrough = rest.last?.id ?? consumedThrough
                leavesInboxEvents = false
            } catch {
                logger.warning(
                    "reading the rest of the inbox failed", metadata: runMetadata.merging(["error": "\(error)"]) { $1 })
                execution.evict()
                return []
            }
        }
        if let failure = execution.taskFailure {
            logger.error(
                "workflow task failed; run blocked",
                metadata: runMetadata.merging(["reason": "\(failure.message)"]) { $1 })
            execution.evict()
            try? await store.blockRun(
                runID: task.runID, leaseToken: task.leaseToken, reason: failure.message, now: clock.now())
            return []
        }
        let now = clock.now()
        let events = execution.takeNewEvents()
        let (leases, eager) = leaseEagerActivities(events, runID: task.runID, workflowID: task.workflowID, now: now)
        execution.runConstants = task.constants ?? execution.runConstants
        let completion = WorkflowTaskCompletion(
            runID: task.runID, workflowID: task.workflowID, leaseToken: task.leaseToken,
            expectedTaskVersion: execution.taskVersion,
            consumedInboxThrough: consumedThrough, events: events, eagerLeases: leases,
            hasPendingApprovals: execution.hasPendingApprovals, parent: execution.info.parent,
            hasChildren: execution.hasChildren,
            knownRun: execution.runConstants.map {
                KnownRun(historyLength: execution.historyLength - events.count, constants: $0)
            }, claimedInboxVersion: task.inboxVersion, leavesInboxEvents: leavesInboxEvents,
            timerOwner: timerOwner, now: now)
        var databaseUnreachable = false
        do {
            switch try await store.completeWorkflowTask(completion) {
            case .committed(let version):
                keep(execution, version: version, committed: events)
                return eager
            case .rejected(let reason):
                logger.debug("workflow task rejected", metadata: runMetadata.merging(["reason": "\(reason)"]) { $1 })
            }
        } catch {
            logger.warning("workflow task commit failed", metadata: runMetadata.merging(["error": "\(error)"]) { $1 })
            databaseUnreachable = (error as? KeelError)?.code == .databaseUnreachable
        }
        execution.evict()
        activitySlots.release(eager.count)
        if databaseUnreachable { await release(task, metadata: runMetadata) }
        return []
    }

    /// Gives a task back after its commit failed because the database was unreachable, retrying
    /// while the database comes back (up to one lease): the worker did not crash, so the claim
    /// must not count toward ``WorkerConfiguration/workflowTaskClaimLimit``, or a run whose
    /// commits meet a few outages in a row would be blocked as a crash loop.
    private func release(_ task: WorkflowTask, metadata: Logger.Metadata) async {
        let deadline = ContinuousClock.now + configuration.workflowTaskLease
        var pause = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                try await store.releaseWorkflowTask(runID: task.runID, leaseToken: task.leaseToken, now: clock.now())
                return
            } catch {
                guard ContinuousClock.now + pause < deadline else {
                    logger.warning(
                        "releasing the workflow task failed; its lease will expire",
                        metadata: metadata.merging(["error": "\(error)"]) { $1 })
                    return
                }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }

    /// The order a task delivers its inbox to the code: signals first, in the order they arrived,
    /// then everything else (timer fires, activity outcomes, decisions, cancellation) in its order.
    /// As in Temporal: code that waits for a signal with a timeout sees a signal that arrived
    /// before the task even when the timeout's timer fired earlier still, so an acknowledged signal
    /// is not recorded behind the back of code that stops waiting. History records the delivery
    /// order, so replay repeats it.
    static func deliveryOrder(_ inbox: [InboxEvent]) -> [InboxEvent] {
        guard inbox.count > 1 else { return inbox }
        let isSignal = { (event: InboxEvent) -> Bool in
            if case .signalReceived = event.kind { return true }
            return false
        }
        return inbox.filter(isSignal) + inbox.filter { !isSignal($0) }
    }

    /// The run's execution, in step with `task`: from the cache, or replayed from history.
    private func resume(_ task: WorkflowTask) async throws -> WorkflowExecution {
        let cached = cache.checkOut(task.runID)
        if let cached, cached.taskVersion == task.taskVersion {
            return cached
        }
        cached?.evict()
        let definition = try registry.workflow(named: task.workflowType)
        let history: [HistoryEvent]
        if let loaded = task.history {
            history = loaded
        } else {
            history = try await store.history(runID: task.runID)
        }
        let execution = try WorkflowExecution.replay(
            history, runID: task.runID, definition: definition, logger: logger,
            requiresApprovers: configuration.requiresApprovers)
        execution.taskVersion = task.taskVersion
        return execution
    }

    /// Caches the execution after a commit of `events`, in step with task `version`; the timers
    /// those events started are this worker's to fire.
    func keep(_ execution: WorkflowExecution, version: Int, committed events: [(kind: HistoryEvent.Kind, timestamp: Date)]) {
        execution.taskVersion = version
        guard !execution.isFinished else { return }
        for (kind, _) in events where ownsTimers {
            if case .timerStarted(let seq, let fireAt) = kind, execution.awaitsTimer(seq) {
                ownedTimers.add(runID: execution.info.runID, seq: seq, fireAt: fireAt)
            }
        }
        cache.checkIn(execution)
    }

    /// Commits what a cached execution did since its last commit, on the sticky fast path (no
    /// claim, no lease): its new events, the activities they schedule leased to this worker.
    /// `commit` sends that continuation with what it carries in (an activity's outcome, fired
    /// timers) and returns the new task version, or `nil` when nothing was written.
    /// - Returns: the leased activities (each holds an activity slot); `nil` when nothing was
    ///   written, and the execution is evicted (so it is when `commit` throws).
    func commitContinuation(
        of execution: WorkflowExecution, now: Date, _ commit: (WorkflowTaskCompletion) async throws -> Int?
    ) async throws -> [ActivityTask]? {
        let events = execution.takeNewEvents()
        let (leases, eager) = leaseEagerActivities(
            events, runID: execution.info.runID, workflowID: execution.info.workflowID, now: now)
        let continuation = WorkflowTaskCompletion(
            runID: execution.info.runID, workflowID: execution.info.workflowID, leaseToken: nil,
            expectedTaskVersion: execution.taskVersion, consumedInboxThrough: nil, events: events,
            eagerLeases: leases, hasPendingApprovals: execution.hasPendingApprovals,
            parent: execution.info.parent, hasChildren: execution.hasChildren,
            knownRun: execution.runConstants.map {
                KnownRun(historyLength: execution.historyLength - events.count, constants: $0)
            }, timerOwner: timerOwner, now: now)
        let version: Int?
        do {
            version = try await commit(continuation)
        } catch {
            execution.evict()
            activitySlots.release(eager.count)
            throw error
        }
        guard let version else {
            execution.evict()
            activitySlots.release(eager.count)
            return nil
        }
        keep(execution, version: version, committed: events)
        return eager
    }

    /// This worker's identity as the owner of the timers its commits start, if it ``ownsTimers``.
    var timerOwner: String? { ownsTimers ? configuration.identity : nil }

    /// Leases newly scheduled activities to this worker, as far as it has free slots and knows them.
    func leaseEagerActivities(
        _ events: [(kind: HistoryEvent.Kind, timestamp: Date)], runID: String, workflowID: String,
        now: Date
    ) -> ([Int: ActivityLease], [ActivityTask]) {
        guard configuration.eagerActivities, !draining.load(ordering: .relaxed) else { return ([:], []) }
        var leases: [Int: ActivityLease] = [:]
        var tasks: [ActivityTask] = []
        for (kind, timestamp) in events {
            // An activity on the run's queue is on a queue this worker serves: it claimed or started the run.
            guard case .activityScheduled(let seq, let name, let input, let key, let options) = kind,
                options.taskQueue.map(configuration.taskQueues.contains) ?? true, registry.activity(named: name) != nil,
                activitySlots.acquire(upTo: 1) == 1
            else { continue }
            let lease = ActivityLease(
                owner: configuration.identity, token: Int64.random(in: 1...Int64.max),
                expiresAt: now.addingTimeInterval((options.attemptLease ?? configuration.defaultActivityLease).seconds))
            leases[seq] = lease
            tasks.append(
                ActivityTask(
                    runID: runID, workflowID: workflowID, seq: seq, activityName: name, input: input,
                    idempotencyKey: key, options: options, attempt: 1, scheduledAt: timestamp,
                    leaseToken: lease.token, heartbeatDetails: nil))
        }
        return (leases, tasks)
    }

    // MARK: - Timers

    /// Due timers fired in one transaction; a full batch means more are due.
    package static let timerBatch = 1000

    /// Fires the timers and schedules' ticks due at `now` (by default, the clock's now): a timer
    /// pass (which leaves workers' own timers to them for ``timerOwnerGrace``).
    /// - Returns: how many fired (at `limit`, more may be due).
    package func fireDueTimers(now: Date? = nil, limit: Int = WorkflowEngine.timerBatch) async throws -> Int {
        let now = now ?? clock.now()
        let timers = try await store.fireDueTimers(now: now, limit: limit)
        return timers + (try await store.fireDueSchedules(now: now, limit: limit))
    }

    /// Stops leasing new activities to this worker: work in hand finishes, new work is left to others.
    package func beginDraining() {
        draining.store(true, ordering: .relaxed)
    }

    /// Whether the worker is stopping (``beginDraining()`` was called).
    var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Ends the grace period of a stopping worker: attempts still running are cancelled and given back.
    package func endShutdownGrace() {
        shutdownGrace.end()
    }

    /// Evicts every cached run (on shutdown).
    package func evictAll() {
        ownedTimers.removeAll()
        cache.removeAll()
    }
}
