import Foundation
import Logging

// Owned timers: the timers of runs this worker ran, fired by the worker itself (``OwnedTimers``).
extension WorkflowEngine {
    /// Fires the run's owned timers `seqs`, due now: the run's cached execution continues in
    /// memory and its next commands are committed with the timers
    /// (``WorkflowStore/fireTimersAndContinue(_:continuation:)``). Where that cannot be — the run
    /// is not cached or busy with another task, or it moved on — the timers go to its inbox
    /// (``WorkflowStore/fireTimers(_:runID:now:)``) for a workflow task, as a timer pass would.
    /// - Returns: activities the continued run leased to this worker (each holds an activity slot).
    package func fireOwnedTimers(_ seqs: [Int], runID: String) async -> [ActivityTask] {
        var metadata: Logger.Metadata = ["run-id": "\(runID)"]
        if let execution = cache.checkOut(runID) {
            metadata["workflow-id"] = "\(execution.info.workflowID)"
            let waiting = seqs.filter(execution.awaitsTimer)
            guard !waiting.isEmpty else {
                // Cancelled (the commit that did so deleted them) or fired already.
                cache.checkIn(execution)
                return []
            }
            do {
                if let eager = try await continueRun(execution, firing: waiting) { return eager }
            } catch {
                logger.warning(
                    "committing fired timers with the run's next task failed; queueing them",
                    metadata: metadata.merging(["error": "\(error)"]) { $1 })
            }
        }
        do {
            _ = try await store.fireTimers(seqs, runID: runID, now: clock.now())
        } catch {
            logger.warning(
                "firing owned timers failed; the timer passes fire them",
                metadata: metadata.merging(["error": "\(error)"]) { $1 })
        }
        return []
    }

    /// Continues a cached run past its timers `seqs` and commits both at once.
    /// - Returns: the activities leased to this worker; `nil` when nothing was committed (the
    ///   execution is evicted).
    private func continueRun(_ execution: WorkflowExecution, firing seqs: [Int]) async throws -> [ActivityTask]? {
        guard execution.runConstants != nil else {
            cache.checkIn(execution)
            return nil
        }
        let now = clock.now()
        for seq in seqs { execution.apply(.timerFired(seq: seq), at: now) }
        guard execution.taskFailure == nil else {
            // A claimed task meets the failure again and blocks the run.
            execution.evict()
            return nil
        }
        return try await commitContinuation(of: execution, now: now) { continuation in
            try await store.fireTimersAndContinue(seqs, continuation: continuation)
        }
    }
}
