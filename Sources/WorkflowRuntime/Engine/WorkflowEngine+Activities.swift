import Foundation
import Logging
import Synchronization

// Activities: attempts claimed and run, their outcomes reported, and the fast path that continues
// the run in memory when one finishes.
extension WorkflowEngine {
    /// Leases due activity attempts, as far as this worker has free slots (each returned task holds one).
    package func claimActivityTasks() async throws -> [ActivityTask] {
        let granted = activitySlots.acquire(upTo: activitySlots.available)
        guard granted > 0 else { return [] }
        do {
            let tasks = try await store.claimActivityTasks(
                owner: configuration.identity, limit: granted, defaultLease: configuration.defaultActivityLease,
                now: clock.now(),
                taskQueues: configuration.taskQueues)
            activitySlots.release(granted - tasks.count)
            return tasks
        } catch {
            activitySlots.release(granted)
            throw error
        }
    }

    /// Runs an activity attempt and its follow-ups (the activities its run schedules next on the fast path).
    package func runActivityChain(_ first: ActivityTask) async {
        var next = await runActivity(first)
        while next.count == 1 {
            next = await runActivity(next[0])
        }
        await runConcurrently(next)
    }

    /// Runs the chains of activities scheduled together (by `async let`, a task group or
    /// `parallel`) at the same time; each already holds its activity slot, so the slots bound them.
    package func runConcurrently(_ activities: [ActivityTask]) async {
        if activities.count <= 1 {
            if let only = activities.first { await runActivityChain(only) }
            return
        }
        await withDiscardingTaskGroup { group in
            for task in activities {
                group.addTask { await self.runActivityChain(task) }
            }
        }
    }

    /// Runs one attempt and records its outcome; releases the attempt's slot.
    /// - Returns: activities the run scheduled next, leased to this worker.
    func runActivity(_ task: ActivityTask) async -> [ActivityTask] {
        defer { activitySlots.release() }
        let outcome = await attempt(task)
        let now = clock.now()
        let report = ActivityReport(
            runID: task.runID, seq: task.seq, leaseToken: task.leaseToken, attempt: task.attempt,
            outcome: outcome, now: now)
        do {
            if report.event != nil, let execution = cache.checkOut(task.runID) {
                return try await continueRun(execution, after: report)
            }
            if try await !store.reportActivity(report) {
                logger.info(
                    "activity outcome dropped: its lease was lost",
                    metadata: ["workflow-id": "\(task.workflowID)", "activity": "\(task.activityName)"])
            }
        } catch {
            logger.warning(
                "activity outcome not recorded; it will be retried when its lease expires",
                metadata: [
                    "workflow-id": "\(task.workflowID)", "activity": "\(task.activityName)", "error": "\(error)",
                ])
        }
        return []
    }

    /// The fast path: applies a final activity outcome to the cached execution and commits both at once.
    private func continueRun(_ execution: WorkflowExecution, after report: ActivityReport) async throws
        -> [ActivityTask]
    {
        execution.apply(report.event!, at: report.now)
        if execution.taskFailure != nil {
            // Let a regular workflow task hit the failure and block the run.
            execution.evict()
            _ = try await store.reportActivity(report)
            return []
        }
        return try await commitContinuation(of: execution, now: report.now) { continuation in
            let result = try await store.reportActivityAndContinue(report, continuation: continuation)
            guard case .continued(let version) = result else { return nil }
            return version
        } ?? []
    }

    /// Runs the activity's code once, within its timeouts and while it holds its lease
    /// (``ActivityAttemptSupervisor``), and decides what comes next.
    private func attempt(_ task: ActivityTask) async -> ActivityReport.Outcome {
        let policy = task.options.retryPolicy
        let failure: ErrorInfo
        if let maximum = policy.maximumAttempts, task.attempt > maximum {
            // The last allowed attempt was lost with its worker.
            return .failed(
                ErrorInfo(
                    type: "ActivityTimeout",
                    message: "attempt \(task.attempt - 1) was lost (its worker stopped or timed out)",
                    nonRetryable: true, retryState: .maximumAttemptsReached))
        }
        if let definition = registry.activity(named: task.activityName) {
            let store = self.store
            let clock = self.clock
            let leaseLength =
                task.options.heartbeatTimeout.map { $0.clampedToLongestAccepted + ActivityOptions.leaseGrace }
                ?? task.options.attemptLease ?? configuration.defaultActivityLease
            let context = ActivityContext(
                task: task, clock: clock, logger: logger,
                isWorkerShuttingDown: { [weak self] in self?.isDraining ?? true },
                sleepTracker: { [weak self, key = nextAttemptKey.add(1, ordering: .relaxed).newValue] until in
                    _ = self?.sleepingActivities.withLock { $0[key] = until }
                }
            ) { details in
                try await store.heartbeat(
                    runID: task.runID, seq: task.seq, leaseToken: task.leaseToken, details: details,
                    leaseUntil: clock.now().addingTimeInterval(leaseLength.seconds))
            }
            do {
                let supervisor = ActivityAttemptSupervisor(
                    clock: clock, shutdownGrace: shutdownGrace,
                    gracePeriod: configuration.shutdownGrace)
                let output = try await supervisor.run(context, options: task.options) {
                    try await definition.run(context, task.input)
                }
                return .completed(output)
            } catch is ActivityCancellationRequested {
                logger.info(
                    "activity attempt stopped: its workflow cancelled it",
                    metadata: [
                        "workflow-id": "\(task.workflowID)", "activity": "\(task.activityName)",
                        "attempt": "\(task.attempt)",
                    ])
                return .cancelled
            } catch let error as WorkerShutdownError {
                logger.info(
                    "activity attempt given back: the worker is shutting down",
                    metadata: [
                        "workflow-id": "\(task.workflowID)", "activity": "\(task.activityName)",
                        "attempt": "\(task.attempt)",
                    ])
                return .released(ErrorInfo(type: "WorkerShutdown", message: error.description))
            } catch {
                failure = ErrorInfo(error)
            }
        } else {
            failure = ErrorInfo(
                type: "UnknownActivity",
                message: "activity '\(task.activityName)' is not registered on worker \(configuration.identity)")
        }
        logger.info(
            "activity attempt failed",
            metadata: [
                "workflow-id": "\(task.workflowID)", "activity": "\(task.activityName)", "attempt": "\(task.attempt)",
                "error": "\(failure)",
            ])
        guard policy.allowsRetry(after: task.attempt, failure: failure) else {
            var final = failure
            final.retryState = policy.isNonRetryable(failure) ? .nonRetryableFailure : .maximumAttemptsReached
            return .failed(final)
        }
        // The error's own delay (a provider's Retry-After) takes the place of the policy's backoff.
        let delay = failure.nextRetryDelay ?? policy.delay(afterAttempt: task.attempt).seconds
        let retryAt = clock.now().addingTimeInterval(min(delay, Duration.longestAccepted.seconds))
        if let limit = task.options.scheduleToCloseTimeout, retryAt > task.scheduledAt.addingTimeInterval(limit.seconds)
        {
            return .failed(
                ErrorInfo(
                    type: "ActivityTimeout", message: "schedule-to-close timeout of \(limit) passed",
                    nonRetryable: true, cause: failure, retryState: .timeout))
        }
        return .retry(failure, at: retryAt)
    }
}
