import Foundation

extension HistoryEvent.Kind {
    /// A one-line description of the event's content, for timelines.
    public var detail: String {
        switch self {
        case .workflowStarted(let type, _, let input, let parent):
            "\(type) input=\(Payload.abbreviated(input))"
                + (parent.map { " parent=\($0.workflowID) (run \($0.runID))" } ?? "")
        case .activityScheduled(let seq, let activity, let input, let key, _):
            "#\(seq) \(activity) input=\(Payload.abbreviated(input)) key=\(key)"
        case .activityCompleted(let seq, let result, let attempt):
            "#\(seq) result=\(Payload.abbreviated(result)) attempt=\(attempt)"
        case .activityFailed(let seq, let failure, let attempts): "#\(seq) \(failure) attempts=\(attempts)"
        case .timerStarted(let seq, let fireAt): "#\(seq) fires at \(fireAt.formatted(.iso8601))"
        case .timerFired(let seq), .timerCancelled(let seq), .activityCancelRequested(let seq),
            .activityCancelled(let seq):
            "#\(seq)"
        case .markerRecorded(let seq, let name, let value): "#\(seq) \(name)=\(Payload.abbreviated(value))"
        case .signalReceived(let name, let payload, let requestID):
            "\(name) payload=\(Payload.abbreviated(payload))" + (requestID.map { " request=\($0)" } ?? "")
        case .cancelRequested(let reason), .workflowCancelled(let reason): reason ?? ""
        case .workflowCompleted(let result): "result=\(Payload.abbreviated(result))"
        case .workflowFailed(let failure): failure.description
        case .workflowTerminated(let reason): reason
        case .approvalRequested(let seq, let request):
            "#\(seq) \(request.id) '\(request.name)' \(request.summary) sha256=\(request.payloadHash.prefix(12)) "
                + "approvers=\(request.approvers.isEmpty ? "anyone" : request.approvers.joined(separator: ","))"
                + " deadline \(request.deadline.formatted(.iso8601))"
        case .approvalDecided(let seq, let decision):
            "#\(seq) \(decision.outcome.rawValue)" + (decision.decidedBy.map { " by \($0)" } ?? "")
                + (decision.role.map { " as \($0)" } ?? "") + (decision.note.map { ": \($0)" } ?? "")
        case .externalSignalRequested(let seq, let workflowID, let signal, let payload):
            "#\(seq) \(signal) to \(workflowID) payload=\(Payload.abbreviated(payload))"
        case .externalCancelRequested(let seq, let workflowID, let reason):
            "#\(seq) \(workflowID)" + (reason.map { ": \($0)" } ?? "")
        case .externalRequestDelivered(let seq, let runID): "#\(seq) to run \(runID)"
        case .externalRequestFailed(let seq, let failure), .childWorkflowStartFailed(let seq, let failure):
            "#\(seq) \(failure)"
        case .childWorkflowRequested(let seq, let type, let workflowID, let input, let options):
            "#\(seq) \(type) id=\(workflowID) input=\(Payload.abbreviated(input)) "
                + "on parent close: \(options.parentClosePolicy.rawValue)"
        case .childWorkflowStarted(let seq, let runID): "#\(seq) run \(runID)"
        case .stageChanged(let seq, let stage): "#\(seq) \(stage)"
        case .searchAttributesUpserted(let seq, let attributes):
            "#\(seq) "
                + attributes.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.text)" }.joined(separator: " ")
        case .childWorkflowClosed(let seq, let runID, let status, let result, let failure):
            "#\(seq) run \(runID) \(status.rawValue)" + (result.map { " result=\(Payload.abbreviated($0))" } ?? "")
                + (failure.map { " \($0)" } ?? "")
        case .compensationStarted(let seq, let cause): "#\(seq) after \(cause)"
        case .compensationFailed(let seq, let activity, let failure): "#\(seq) \(activity): \(failure)"
        case .compensationRetryRequested(let requestedBy): requestedBy.map { "by \($0)" } ?? ""
        case .workflowCompensated(let cause): "after \(cause)"
        case .workflowContinuedAsNew(let input, let runID, let signals):
            "as run \(runID) input=\(Payload.abbreviated(input))"
                + (signals.isEmpty ? "" : " carrying \(signals.count) signal\(signals.count == 1 ? "" : "s")")
        }
    }
}
