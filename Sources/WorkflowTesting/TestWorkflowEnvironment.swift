import Foundation
import KeelSQLite
import Logging
import Synchronization
import WorkflowRuntime

/// Runs workflows against a real store (by default a new SQLite file) with a manual clock that skips ahead to the next
/// timer, retry or activity deadline whenever every run is waiting and every activity attempt in
/// flight sleeps on the clock (``ActivityContext/sleep(for:)``) — a 21-day cadence tests in
/// milliseconds.
///
/// ```swift
/// var registry = WorkflowRegistry()
/// registry.register(Cadence.self)
/// let env = try await TestWorkflowEnvironment(registry: registry)
/// let handle = try await env.client.start(Cadence.self, id: "lead-1", input: lead)
/// let outcome = try await env.result(of: handle, as: Cadence.self)
/// ```
///
/// Workflow tasks and timers are processed one at a time in the test's own task. Activity attempts
/// run as they do on a worker — concurrently, bounded by the activity slots, under their
/// timeouts and heartbeats — on the same manual clock: an attempt that sleeps an hour without
/// heartbeating meets its heartbeat timeout in skipped time, and five attempts that each sleep
/// 300 ms take 300 ms of it together.
public final class TestWorkflowEnvironment: Sendable {
    public let clock: ManualClock
    package let store: any WorkflowStore
    /// The database the environment runs on.
    public var database: WorkflowDatabase { WorkflowDatabase(store: store) }
    public let client: WorkflowClient
    /// The SQLite database file this environment created or opened; `nil` when it was given a
    /// store. ``shutdown()`` deletes it only if the environment created it.
    public let databasePath: String?
    /// Whether ``shutdown()`` deletes ``databasePath``: only a file this environment created.
    private let ownsDatabaseFile: Bool
    private let engine: WorkflowEngine
    /// Activity chains started by ``runUntilIdle()`` and not finished, cancelled by ``shutdown()``.
    private let activityChains = Mutex<[Int: Task<Void, Never>]>([:])
    /// Set by ``stopWorker(grace:)``: no more work is taken.
    private let workerStopped = Atomic<Bool>(false)
    private let nextChainID = Atomic<Int>(0)

    /// - Parameters:
    ///   - eagerActivities: run activities on the fast path (as the daemon does), or only through the task queue.
    ///   - databasePath: an existing database to use (e.g. to run the same runs with changed code); default: a new
    /// file.
    ///   - logger: where the engine and workflow code log; default: nowhere.
    public convenience init(
        registry: WorkflowRegistry, startTime: Date = Date(timeIntervalSince1970: 1_800_000_000),
        eagerActivities: Bool = true, databasePath: String? = nil, logger: Logger? = nil
    ) async throws {
        let path =
            databasePath
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("keel-test-\(UUID().uuidString).sqlite")
            .path
        let store = try SQLWorkflowStore(sqlitePath: path, synchronous: .normal)
        try await store.migrate()
        self.init(
            registry: registry, store: store, databasePath: path, ownsDatabaseFile: databasePath == nil,
            startTime: startTime,
            eagerActivities: eagerActivities, logger: logger)
    }

    /// An environment on a database the caller opened and migrated (e.g. PostgreSQL), and keeps.
    public convenience init(
        registry: WorkflowRegistry, database: WorkflowDatabase,
        startTime: Date = Date(timeIntervalSince1970: 1_800_000_000),
        eagerActivities: Bool = true, logger: Logger? = nil
    ) {
        self.init(
            registry: registry, store: database.store, startTime: startTime, eagerActivities: eagerActivities,
            logger: logger)
    }

    /// An environment on a store the caller opened and migrated, and keeps.
    package convenience init(
        registry: WorkflowRegistry, store: any WorkflowStore,
        startTime: Date = Date(timeIntervalSince1970: 1_800_000_000),
        eagerActivities: Bool = true, logger: Logger? = nil
    ) {
        self.init(
            registry: registry, store: store, databasePath: nil, ownsDatabaseFile: false, startTime: startTime,
            eagerActivities: eagerActivities, logger: logger)
    }

    private init(
        registry: WorkflowRegistry, store: any WorkflowStore, databasePath: String?, ownsDatabaseFile: Bool,
        startTime: Date,
        eagerActivities: Bool, logger: Logger?
    ) {
        self.ownsDatabaseFile = ownsDatabaseFile
        clock = ManualClock(now: startTime)
        self.store = store
        self.databasePath = databasePath
        client = WorkflowClient(store: store, registry: registry, clock: clock)
        var silent = Logger(label: "keel.test")
        silent.logLevel = .critical
        let logger = logger ?? silent
        engine = WorkflowEngine(
            store: store, registry: registry, clock: clock,
            configuration: WorkerConfiguration(identity: "test-worker", eagerActivities: eagerActivities),
            logger: logger)
    }

    /// Processes everything that is due now, without moving the clock.
    /// - Returns: whether anything was done.
    /// Activity attempts run concurrently; this returns once every attempt in flight has ended or
    /// sleeps on the clock.
    /// - Returns: whether anything was done.
    @discardableResult
    public func runUntilIdle() async throws -> Bool {
        var didWork = false
        while !workerStopped.load(ordering: .relaxed) {
            // Taken before the claims: an attempt that reported before this sees its outcome claimed below.
            let settled = engine.activityAttemptsInFlight <= engine.activityAttemptsSleeping
            var progressed = false
            for task in try await engine.claimWorkflowTasks(limit: 100) {
                progressed = true
                startActivities(await engine.process(task))
            }
            let claimed = try await engine.claimActivityTasks()
            if !claimed.isEmpty {
                progressed = true
                startActivities(claimed)
            }
            if try await engine.fireDueTimers() > 0 { progressed = true }
            if progressed {
                didWork = true
                continue
            }
            // Nothing is due: let the attempts in flight end, or sleep on the clock.
            if settled { return didWork }
            try await Task.sleep(for: .milliseconds(1))
        }
        return didWork
    }

    /// Stops the environment's worker as SIGTERM stops `worker run`: it takes no more work; its
    /// activity attempts see ``ActivityContext/isWorkerShuttingDown`` and may finish within
    /// `grace` of workflow time (skipped while they all sleep on the clock); those still running
    /// then are cancelled and given back at once, uncounted, for another worker. To play that
    /// worker, open an environment on the same database (``databasePath``) starting at this
    /// clock's time.
    public func stopWorker(grace: Duration) async throws {
        workerStopped.store(true, ordering: .relaxed)
        engine.beginDraining()
        let graceEnds = clock.now().addingTimeInterval(grace.seconds)
        while engine.activityAttemptsInFlight > 0, clock.now() < graceEnds {
            if engine.activityAttemptsInFlight <= engine.activityAttemptsSleeping {
                clock.advance(to: min(clock.nextDeadline ?? graceEnds, graceEnds))
            } else {
                try await Task.sleep(for: .milliseconds(1))
            }
        }
        engine.endShutdownGrace()
        while engine.activityAttemptsInFlight > 0 { try await Task.sleep(for: .milliseconds(1)) }
    }

    /// Runs each activity (and the follow-ups its run schedules) in a task of its own, as a worker does.
    private func startActivities(_ activities: [ActivityTask]) {
        for activity in activities {
            let id = nextChainID.add(1, ordering: .relaxed).newValue
            // Inserted under the lock the task takes to remove itself, so it cannot end first.
            activityChains.withLock { chains in
                chains[id] = Task { [weak self, engine] in
                    await engine.runActivityChain(activity)
                    _ = self?.activityChains.withLock { $0.removeValue(forKey: id) }
                }
            }
        }
    }

    /// Processes the workflow tasks that are due now, and nothing else: activities wait in their
    /// queue (unless run eagerly) and timers are not fired, so a test can line up what arrives
    /// before a run's next task. - Returns: how many tasks were processed.
    @discardableResult
    public func runWorkflowTasks() async throws -> Int {
        var processed = 0
        while true {
            let tasks = try await engine.claimWorkflowTasks(limit: 100)
            guard !tasks.isEmpty else { return processed }
            for task in tasks {
                processed += 1
                for activity in await engine.process(task) {
                    await engine.runActivityChain(activity)
                }
            }
        }
    }

    /// Runs work and skips time until `runID` closes.
    /// - Throws: ``KeelError`` `.timeout` if the run waits with nothing scheduled (for a signal, say).
    public func waitForClose(runID: String) async throws -> WorkflowRun {
        while true {
            try await runUntilIdle()
            guard let run = try await store.run(runID: runID) else {
                throw KeelError(.workflowNotFound, "no run with id '\(runID)'")
            }
            if !run.status.isOpen { return run }
            if run.status == .blocked || run.status == .compensationFailed {
                throw KeelError(
                    .timeout, "workflow '\(run.workflowID)' is \(run.status.rawValue): \(run.statusReason ?? "")")
            }
            let due = [try await store.nextWakeUp(), clock.nextDeadline].compactMap { $0 }.min()
            guard let next = due, next > clock.now() else {
                throw KeelError(
                    .timeout, "workflow '\(run.workflowID)' is waiting and nothing is scheduled (a signal?)")
            }
            clock.advance(to: next)
        }
    }

    /// Runs work and skips time until the run closes, then decodes its result.
    /// - Throws: ``WorkflowRunError`` if the run failed, was cancelled or terminated.
    /// Follows the runs it continues as new into, as ``WorkflowClient/result(of:as:timeout:)`` does.
    public func result<W: Workflow>(of handle: WorkflowHandle, as workflow: W.Type) async throws -> W.Output {
        var run = try await waitForClose(runID: handle.runID)
        while run.status == .continuedAsNew, let next = try await store.nextRun(after: run.runID) {
            run = try await waitForClose(runID: next.runID)
        }
        guard run.status == .completed, let result = run.result else { throw WorkflowRunError(run: run) }
        return try result.decode(as: W.Output.self)
    }

    /// Skips time forward, then processes what became due.
    public func advance(by duration: Duration) async throws {
        clock.advance(by: duration)
        try await runUntilIdle()
    }

    /// Drops cached executions so the next task replays from history (what a restart does).
    public func evictCachedRuns() {
        engine.evictAll()
    }

    /// Drops cached runs and deletes the database file this environment created (not a file or
    /// store it was given).
    public func shutdown() {
        for task in activityChains.withLock({ $0.values }) { task.cancel() }
        engine.evictAll()
        guard let databasePath, ownsDatabaseFile else { return }
        for suffix in ["", "-wal", "-shm"] {
            try? FileManager.default.removeItem(atPath: databasePath + suffix)
        }
    }
}
