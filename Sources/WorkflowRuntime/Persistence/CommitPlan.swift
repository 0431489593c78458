import Foundation

/// The rows a workflow task's events imply, computed once for every backend.
struct CommitPlan {
    struct NewActivity {
        var seq: Int
        var name: String
        var input: Payload
        var idempotencyKey: String
        var options: ActivityOptions
        var scheduledAt: Date
    }

    struct Closing {
        var status: RunStatus
        var result: Payload?
        var failure: ErrorInfo?
        var reason: String?
    }

    var activities: [NewActivity] = []
    var timers: [(seq: Int, fireAt: Date)] = []
    var cancelledTimers: [Int] = []
    var approvals: [(seq: Int, request: ApprovalRequest, requestedAt: Date)] = []
    var closing: Closing?
    /// A compensation failed for good: the run parks as `compensationFailed`, with this reason.
    var compensationFailure: String?
    /// The run stops waiting for approvals that are still pending (it closes or starts
    /// compensating): they are withdrawn.
    var withdrawsApprovals = false

    init(events: [(kind: HistoryEvent.Kind, timestamp: Date)], hasPendingApprovals: Bool) {
        var startsCompensating = false
        for (kind, timestamp) in events {
            switch kind {
            case .activityScheduled(let seq, let name, let input, let key, let options):
                activities.append(NewActivity(seq: seq, name: name, input: input, idempotencyKey: key, options: options, scheduledAt: timestamp))
            case .timerStarted(let seq, let fireAt): timers.append((seq, fireAt))
            case .timerCancelled(let seq): cancelledTimers.append(seq)
            case .approvalRequested(let seq, let request): approvals.append((seq, request, timestamp))
            case .compensationStarted: startsCompensating = true
            case .compensationFailed(_, let activity, let failure):
                compensationFailure = "compensation '\(activity)' failed: \(failure) (retry with `worker retry ID`)"
            case .workflowCompensated(let cause): closing = Closing(status: .compensated, failure: cause)
            case .workflowCompleted(let result): closing = Closing(status: .completed, result: result)
            case .workflowFailed(let failure): closing = Closing(status: .failed, failure: failure)
            case .workflowCancelled(let reason): closing = Closing(status: .cancelled, reason: reason)
            case .compensationRetryRequested: compensationFailure = nil
            case .workflowStarted, .activityCompleted, .activityFailed, .timerFired, .markerRecorded, .signalReceived,
                .cancelRequested, .approvalDecided, .workflowTerminated:
                break  // history only: nothing else to write
            }
        }
        withdrawsApprovals = hasPendingApprovals && (startsCompensating || closing != nil)
    }
}

/// A completion with its events encoded before the transaction starts.
struct PreparedCompletion: Sendable {
    var completion: WorkflowTaskCompletion
    var plan: CommitPlan
    var bodies: [Data]
    var encodedOptions: [Int: Data]
    var closingFailure: Data?

    init(_ completion: WorkflowTaskCompletion) throws {
        self.completion = completion
        plan = CommitPlan(events: completion.events, hasPendingApprovals: completion.hasPendingApprovals)
        bodies = try completion.events.map { try EventCodec.encode($0.kind) }
        encodedOptions = try Dictionary(uniqueKeysWithValues: plan.activities.map { ($0.seq, try EventCodec.encode(options: $0.options)) })
        closingFailure = try plan.closing?.failure.map { try EventCodec.encode(attribute: $0) }
    }
}
