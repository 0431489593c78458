import Foundation

// Signals and cancellations that workflow code sends to other workflows. Each is delivered by the
// commit that records its command — in the same transaction — so it reaches its target exactly
// once, however often the sender's code is replayed; its outcome waits in the sender's inbox for
// the sender's next task.
extension SQLWorkflowStore {
    /// Delivers the plan's requests to their targets' inboxes and, unless the sender is closing,
    /// queues each outcome in the sender's inbox. The caller holds the sender's row lock.
    /// - Returns: whether outcomes were queued (the sender then needs another task).
    func deliverExternalRequests(
        _ connection: any SQLConnection, _ plan: CommitPlan, sender: (runID: String, workflowID: String),
        queuesOutcomes: Bool, now: Date, notifications: inout StoreNotifications
    ) async throws -> Bool {
        for request in plan.externalRequests {
            let outcome: HistoryEvent.Kind
            if request.workflowID == sender.workflowID {
                outcome = .externalRequestFailed(
                    seq: request.seq,
                    failure: ExternalWorkflowError.Reason.ownWorkflow.failure(
                        "cannot \(request.action): workflow '\(request.workflowID)' is the sender's own (throw, or "
                            + "return, instead)"))
            } else {
                do {
                    let target = try await lockOpenRun(
                        connection, workflowID: request.workflowID, action: request.action)
                    try await addToInbox(
                        connection, runID: target, kind: request.event, body: try EventCodec.encode(request.event),
                        now: now, notifications: &notifications)
                    outcome = .externalRequestDelivered(seq: request.seq, runID: target)
                } catch let error as KeelError where error.code == .workflowNotFound || error.code == .workflowClosed {
                    let reason: ExternalWorkflowError.Reason = error.code == .workflowNotFound ? .notFound : .closed
                    outcome = .externalRequestFailed(seq: request.seq, failure: reason.failure(error.message))
                }
            }
            if queuesOutcomes {
                try await addToInbox(
                    connection, runID: sender.runID, kind: outcome, body: try EventCodec.encode(outcome), now: now,
                    notifications: &notifications)
            }
        }
        return queuesOutcomes && !plan.externalRequests.isEmpty
    }
}
