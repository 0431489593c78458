import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The worker daemon: runs workflow tasks, activity attempts and timers for every run in the store.
///
/// A `Service`: run it in a `ServiceGroup`. On graceful shutdown (SIGTERM) it stops claiming new
/// work, lets the work in hand finish and commit, and returns.
///
/// ```swift
/// let worker = Worker(database: database, registry: registry, logger: logger)
/// let group = ServiceGroup(services: [worker], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
/// try await group.run()
/// ```
public final class Worker: Service, Sendable {
    let engine: WorkflowEngine
    private let stopping = Atomic<Bool>(false)
    private let running = Atomic<Bool>(false)
    /// Activity chains of runs started eagerly, handed to `run()`'s task group.
    private let eagerStarts: AsyncStream<ActivityTask>
    private let eagerStartsInput: AsyncStream<ActivityTask>.Continuation
    /// Yields when ``stop()`` is called; starts the grace period.
    private let stopRequests = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))

    /// A worker on `database`, running what `registry` holds.
    public convenience init(
        database: WorkflowDatabase, registry: WorkflowRegistry, clock: any WorkflowClock = SystemClock(),
        configuration: WorkerConfiguration = WorkerConfiguration(),
        logger: Logger = Logger(label: "keel.worker")
    ) {
        self.init(store: database.store, registry: registry, clock: clock, configuration: configuration, logger: logger)
    }

    package init(
        store: any WorkflowStore, registry: WorkflowRegistry, clock: any WorkflowClock = SystemClock(),
        configuration: WorkerConfiguration = WorkerConfiguration(), logger: Logger = Logger(label: "keel.worker")
    ) {
        var logger = logger
        logger[metadataKey: "worker"] = "\(configuration.identity)"
        engine = WorkflowEngine(
            store: store, registry: registry, clock: clock, configuration: configuration, ownsTimers: true,
            logger: logger)
        (eagerStarts, eagerStartsInput) = AsyncStream.makeStream(of: ActivityTask.self)
    }

    /// Runs until graceful shutdown.
    /// - Throws: ``KeelError`` `.invalidArgument` if the configuration is invalid (see
    ///   ``WorkerConfiguration/validate()``), before any work is claimed.
    public func run() async throws {
        let engine = self.engine
        try engine.configuration.validate()
        engine.logger.info(
            "worker started",
            metadata: [
                "workflow-types": "\(engine.registry.workflowTypes.joined(separator: ","))",
                "workflow-slots": "\(engine.configuration.workflowTaskSlots)",
                "activity-slots": "\(engine.configuration.activityTaskSlots)",
            ])
        let unblocked = try await engine.store.unblockRuns(now: engine.clock.now())
        if unblocked > 0 { engine.logger.info("retrying blocked runs", metadata: ["count": "\(unblocked)"]) }
        running.store(true, ordering: .relaxed)
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { outer in
                outer.addTask { await self.endGraceAfterStop() }
                await withDiscardingTaskGroup { group in
                    group.addTask { await self.workflowTaskLoop() }
                    group.addTask { await self.activityLoop() }
                    group.addTask { await self.timerLoop() }
                    group.addTask { await self.ownedTimerLoop() }
                    group.addTask { await self.eagerStartLoop() }
                }
                outer.cancelAll()  // drained within the grace period
            }
        } onGracefulShutdown: {
            self.stop()
        }
        engine.evictAll()
        engine.logger.info("worker stopped: in-flight work drained")
    }

    /// Runs the worker while `body` runs, then stops it and waits for its in-flight work to drain:
    /// a scoped worker for programs and tests, with no task to manage. If the worker cannot run
    /// (an invalid configuration, the database gone), `body` is cancelled and the error thrown.
    ///
    /// ```swift
    /// let greeting = try await worker.withRunning {
    ///     try await client.result(of: try await client.start(Welcome.self, id: "w-1", input: "Ada"), as: Welcome.self)
    /// }
    /// ```
    public func withRunning<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        // `nil` when the worker's `run()` returned; the body's value otherwise.
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await self.run()
                return nil
            }
            group.addTask { .some(try await body()) }
            do {
                while let finished = try await group.next() {
                    guard case .some(let value) = finished else {
                        group.cancelAll()  // the worker stopped on its own: `body` cannot go on
                        continue
                    }
                    stop()
                    try await group.waitForAll()
                    return value
                }
                throw CancellationError()
            } catch {
                stop()
                group.cancelAll()
                while (try? await group.next()) != nil {}
                throw error
            }
        }
    }

    /// Once the worker is stopping, waits for its grace period, then has the attempts still
    /// running cancelled and given back (``WorkerConfiguration/shutdownGrace``).
    private func endGraceAfterStop() async {
        for await _ in stopRequests.stream { break }
        guard !Task.isCancelled else { return }
        try? await Task.sleep(for: engine.configuration.shutdownGrace)
        guard !Task.isCancelled else { return }
        engine.logger.info(
            "shutdown grace period over: cancelling activity attempts still running",
            metadata: ["grace": "\(engine.configuration.shutdownGrace)"])
        engine.endShutdownGrace()
    }

    /// Stops claiming work; in-flight work finishes within the grace period. `run()` then returns.
    public func stop() {
        stopRequests.continuation.yield()
        stopping.store(true, ordering: .relaxed)
        running.store(false, ordering: .relaxed)
        engine.beginDraining()
        eagerStartsInput.finish()
        for topic in WorkNotifier.Topic.allCases { engine.store.notifier.notify(topic) }
        engine.ownedTimers.wakeUps.notify(.timers)
    }

    private var isStopping: Bool { stopping.load(ordering: .relaxed) || Task.isCancelled }

    /// Whether ``run()`` has started serving (and takes eager starts) and not yet stopped.
    public var isRunning: Bool { running.load(ordering: .relaxed) }

    /// Eager start: while this worker runs, a client in the same process may have it compute a new
    /// run's first workflow task and commit it with the start, and run its first activities at once
    /// (for runs of a type it knows, on a queue it serves).
    /// - Returns: `nil` if this worker declines (not running, type or queue not served here), and
    ///   the client then starts the run the plain way.
    package func startLocally(_ request: StartWorkflowRequest) async throws -> StartWorkflowResult? {
        guard running.load(ordering: .relaxed), engine.registry.workflowTypes.contains(request.workflowType),
            engine.configuration.taskQueues.contains(request.taskQueue),
            let (result, eager) = try await engine.startEagerly(request)
        else { return nil }
        for task in eager {
            if case .terminated = eagerStartsInput.yield(task) {
                // Stopping: the attempt's lease expires and another worker runs it.
                engine.activitySlots.release()
            }
        }
        return result
    }

    private func eagerStartLoop() async {
        await withDiscardingTaskGroup { group in
            for await task in eagerStarts {
                group.addTask { await self.engine.runActivityChain(task) }
            }
        }
    }

    private func workflowTaskLoop() async {
        let notifier = engine.store.notifier
        let slots = SlotPool(capacity: engine.configuration.workflowTaskSlots) { notifier.notify(.workflowTasks) }
        await withDiscardingTaskGroup { group in
            while !isStopping {
                if slots.isExhaustedNotifyingOnRelease() {
                    // The next freed slot notifies the topic, which ends this wait.
                    await notifier.wait(for: .workflowTasks, timeout: engine.configuration.pollInterval)
                    continue
                }
                let free = slots.available
                let tasks: [WorkflowTask]
                do {
                    tasks = try await engine.claimWorkflowTasks(limit: free)
                } catch {
                    engine.logger.warning("cannot claim workflow tasks; backing off", metadata: ["error": "\(error)"])
                    await sleepBeforeRetry()
                    continue
                }
                if tasks.isEmpty {
                    await engine.store.notifier.wait(for: .workflowTasks, timeout: engine.configuration.pollInterval)
                    continue
                }
                for task in tasks {
                    _ = slots.acquire(upTo: 1)
                    group.addTask {
                        let eager = await self.engine.process(task)
                        slots.release()
                        await self.engine.runConcurrently(eager)
                    }
                }
                if tasks.count < free {
                    // The claim took every task ready then; whatever makes one ready later notifies.
                    await notifier.wait(for: .workflowTasks, timeout: engine.configuration.pollInterval)
                }
            }
        }
    }

    private func activityLoop() async {
        await withDiscardingTaskGroup { group in
            while !isStopping {
                let tasks: [ActivityTask]
                do {
                    tasks = try await engine.claimActivityTasks()
                } catch {
                    engine.logger.warning("cannot claim activity tasks; backing off", metadata: ["error": "\(error)"])
                    await sleepBeforeRetry()
                    continue
                }
                if tasks.isEmpty {
                    await engine.store.notifier.wait(for: .activityTasks, timeout: engine.configuration.pollInterval)
                    continue
                }
                for task in tasks {
                    group.addTask { await self.engine.runActivityChain(task) }
                }
            }
        }
    }

    private func timerLoop() async {
        while !isStopping {
            do {
                let limit = WorkflowEngine.timerBatch
                let firedThrough = engine.clock.now()
                if try await engine.fireDueTimers(now: firedThrough, limit: limit) == limit { continue }  // more are due
                // Until the next thing due after what was just fired — a timer due a moment later
                // fires at once. What was due before is the other loops' work (a run that needs a
                // task wakes the workflow task loop): counting it would make this loop sleep a
                // whole poll interval past the next timer.
                var timeout = engine.configuration.pollInterval
                if let next = try await engine.store.nextWakeUp(after: firedThrough) {
                    let until = next.timeIntervalSince(engine.clock.now())
                    timeout = min(timeout, .saturating(seconds: max(0, until)))
                }
                await engine.store.notifier.wait(for: .timers, timeout: timeout)
                // Retries and expired leases become due with time, not with a notification.
                engine.store.notifier.notify(.activityTasks)
            } catch {
                engine.logger.warning("cannot fire timers; backing off", metadata: ["error": "\(error)"])
                await sleepBeforeRetry()
            }
        }
    }

    /// Fires this worker's own timers as they come due (``OwnedTimers``), each run's on its own,
    /// so a burst of them commits together.
    private func ownedTimerLoop() async {
        let timers = engine.ownedTimers
        await withDiscardingTaskGroup { group in
            while !isStopping {
                for (runID, seqs) in timers.takeDue(at: engine.clock.now()) {
                    group.addTask {
                        await self.engine.runConcurrently(await self.engine.fireOwnedTimers(seqs, runID: runID))
                    }
                }
                var timeout = engine.configuration.pollInterval
                if let earliest = timers.earliest {
                    timeout = min(timeout, .saturating(seconds: max(0, earliest.timeIntervalSince(engine.clock.now()))))
                }
                await timers.wakeUps.wait(for: .timers, timeout: timeout)
            }
        }
    }

    private func sleepBeforeRetry() async {
        try? await Task.sleep(for: .seconds(1))
    }
}
