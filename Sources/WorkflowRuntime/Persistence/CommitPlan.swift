import Foundation

/// The rows a workflow task's events imply, computed once for every backend.
package struct CommitPlan {
    package struct NewActivity {
        package var seq: Int
        package var name: String
        package var input: Payload
        package var idempotencyKey: String
        package var options: ActivityOptions
        package var scheduledAt: Date
    }

    /// A signal or cancellation the code sends to another workflow, delivered by the commit.
    package struct ExternalRequest {
        package var seq: Int
        package var workflowID: String
        /// What the target's inbox receives.
        package var event: HistoryEvent.Kind
        /// For messages: `signal 'NAME'` or `cancel`.
        package var action: String
    }

    package struct Closing {
        package var status: RunStatus
        package var result: Payload?
        package var failure: ErrorInfo?
        package var reason: String?
    }

    /// A child workflow the code starts, started by the commit.
    package struct NewChild {
        package var seq: Int
        package var workflowType: String
        package var workflowID: String
        package var input: Payload
        package var options: ChildWorkflowOptions
    }

    /// The next run of a run that continues as new, started by the same commit.
    package struct Continuation {
        package var runID: String
        package var input: Payload
        package var signals: [CarriedSignal]
    }

    package var activities: [NewActivity] = []
    package var timers: [(seq: Int, fireAt: Date)] = []
    package var cancelledTimers: [Int] = []
    /// Activities whose awaiting code was cancelled: their attempts are asked to stop.
    package var cancelledActivities: [Int] = []
    package var approvals: [(seq: Int, request: ApprovalRequest, requestedAt: Date)] = []
    package var externalRequests: [ExternalRequest] = []
    package var children: [NewChild] = []
    /// The stage the run ends the task in, if the task set one.
    package var stage: String?
    /// Search attributes the task set, the last value of each name.
    package var searchAttributes: [String: SearchAttributeValue] = [:]
    package var closing: Closing?
    package var continuation: Continuation?
    /// A compensation failed for good: the run parks as `compensationFailed`, with this reason.
    package var compensationFailure: String?
    /// The run stops waiting for approvals that are still pending (it closes or starts
    /// compensating): they are withdrawn.
    package var withdrawsApprovals = false

    /// Whether the task writes only its events, its run's row and the run's new activities and
    /// timers (and its stage): nothing is read first, no other run is touched, and the run stays
    /// open — so its writes may all go in one statement, the run's row included.
    package var writesOnlyItsRun: Bool {
        externalRequests.isEmpty && children.isEmpty && searchAttributes.isEmpty && cancelledActivities.isEmpty
            && approvals.isEmpty && !withdrawsApprovals && compensationFailure == nil && closing == nil
    }

    /// - Parameter runID: the committing run's, from which external requests take their request ids.
    package init(events: [(kind: HistoryEvent.Kind, timestamp: Date)], runID: String, hasPendingApprovals: Bool) {
        var startsCompensating = false
        for (kind, timestamp) in events {
            switch kind {
            case .activityScheduled(let seq, let name, let input, let key, let options):
                activities.append(
                    NewActivity(
                        seq: seq, name: name, input: input, idempotencyKey: key, options: options,
                        scheduledAt: timestamp))
            case .timerStarted(let seq, let fireAt): timers.append((seq, fireAt))
            case .timerCancelled(let seq): cancelledTimers.append(seq)
            case .activityCancelRequested(let seq): cancelledActivities.append(seq)
            case .approvalRequested(let seq, let request): approvals.append((seq, request, timestamp))
            case .externalSignalRequested(let seq, let workflowID, let signal, let payload):
                externalRequests.append(
                    ExternalRequest(
                        seq: seq, workflowID: workflowID,
                        event: .signalReceived(name: signal, payload: payload, requestID: "\(runID)/\(seq)"),
                        action: "signal '\(signal)'"))
            case .externalCancelRequested(let seq, let workflowID, let reason):
                externalRequests.append(
                    ExternalRequest(
                        seq: seq, workflowID: workflowID, event: .cancelRequested(reason: reason), action: "cancel"))
            case .childWorkflowRequested(let seq, let type, let workflowID, let input, let options):
                children.append(
                    NewChild(seq: seq, workflowType: type, workflowID: workflowID, input: input, options: options))
            case .stageChanged(_, let newStage): stage = newStage
            case .searchAttributesUpserted(_, let attributes):
                searchAttributes.merge(attributes) { $1 }
            case .compensationStarted: startsCompensating = true
            case .compensationFailed(_, let activity, let failure):
                compensationFailure = "compensation '\(activity)' failed: \(failure) (retry with `worker retry ID`)"
            case .workflowCompensated(let cause): closing = Closing(status: .compensated, failure: cause)
            case .workflowCompleted(let result): closing = Closing(status: .completed, result: result)
            case .workflowFailed(let failure): closing = Closing(status: .failed, failure: failure)
            case .workflowCancelled(let reason): closing = Closing(status: .cancelled, reason: reason)
            case .workflowContinuedAsNew(let input, let nextRunID, let signals):
                closing = Closing(status: .continuedAsNew, reason: "continued as new as run \(nextRunID)")
                continuation = Continuation(runID: nextRunID, input: input, signals: signals)
            case .compensationRetryRequested: compensationFailure = nil
            case .workflowStarted, .activityCompleted, .activityFailed, .activityCancelled, .timerFired,
                .markerRecorded, .signalReceived,
                .cancelRequested, .approvalDecided, .externalRequestDelivered, .externalRequestFailed,
                .childWorkflowStarted, .childWorkflowStartFailed, .childWorkflowClosed, .workflowTerminated:
                break  // history only: nothing else to write
            }
        }
        withdrawsApprovals = hasPendingApprovals && (startsCompensating || closing != nil)
    }
}

/// A completion with its events encoded before the transaction starts.
package struct PreparedCompletion: Sendable {
    package var completion: WorkflowTaskCompletion
    package var plan: CommitPlan
    package var bodies: [Data]
    package var encodedOptions: [Int: Data]
    package var closingFailure: Data?
    /// The run's encoded `workflowStarted` event when the task is an eager start's first: the
    /// commit writes it ahead of the task's events, in the same insert.
    package var startedEvent: (body: Data, timestamp: Date)?

    package init(_ completion: WorkflowTaskCompletion, startedEvent: (body: Data, timestamp: Date)? = nil) throws {
        self.completion = completion
        self.startedEvent = startedEvent
        plan = CommitPlan(
            events: completion.events, runID: completion.runID, hasPendingApprovals: completion.hasPendingApprovals)
        bodies = try completion.events.map { try EventCodec.encode($0.kind) }
        encodedOptions = try Dictionary(
            uniqueKeysWithValues: plan.activities.map { ($0.seq, try EventCodec.encode(options: $0.options)) })
        closingFailure = try plan.closing?.failure.map { try EventCodec.encode(attribute: $0) }
    }
}
