import Foundation

/// Events are stored as flat JSON objects (`{"type": "activityScheduled", "seq": 1, ...}`):
/// readable with `sqlite3`/`psql`, and several times cheaper to encode than nested enum coding.
extension HistoryEvent.Kind: Codable {
    private enum Key: String, CodingKey {
        case type, seq, workflowType, workflowID, input, activity, idempotencyKey, options, result, attempt, attempts,
            failure, fireAt, name, value, payload, requestID, reason, request, decision, cause, requestedBy, signal,
            runID, signals, parent, status, stage, attributes
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        let type = try c.decode(String.self, forKey: .type)
        func seq() throws -> Int { try c.decode(Int.self, forKey: .seq) }
        switch type {
        case "workflowStarted":
            self = .workflowStarted(
                workflowType: try c.decode(String.self, forKey: .workflowType),
                workflowID: try c.decode(String.self, forKey: .workflowID),
                input: try c.decode(Payload.self, forKey: .input),
                parent: try c.decodeIfPresent(ParentWorkflowInfo.self, forKey: .parent))
        case "activityScheduled":
            self = .activityScheduled(
                seq: try seq(), activity: try c.decode(String.self, forKey: .activity),
                input: try c.decode(Payload.self, forKey: .input),
                idempotencyKey: try c.decode(String.self, forKey: .idempotencyKey),
                options: try c.decodeIfPresent(ActivityOptions.self, forKey: .options) ?? ActivityOptions())
        case "activityCompleted":
            self = .activityCompleted(
                seq: try seq(), result: try c.decode(Payload.self, forKey: .result),
                attempt: try c.decode(Int.self, forKey: .attempt))
        case "activityCancelRequested": self = .activityCancelRequested(seq: try seq())
        case "activityCancelled": self = .activityCancelled(seq: try seq())
        case "activityFailed":
            self = .activityFailed(
                seq: try seq(), failure: try c.decode(ErrorInfo.self, forKey: .failure),
                attempts: try c.decode(Int.self, forKey: .attempts))
        case "timerStarted": self = .timerStarted(seq: try seq(), fireAt: try c.decode(Date.self, forKey: .fireAt))
        case "timerFired": self = .timerFired(seq: try seq())
        case "timerCancelled": self = .timerCancelled(seq: try seq())
        case "markerRecorded":
            self = .markerRecorded(
                seq: try seq(), name: try c.decode(String.self, forKey: .name),
                value: try c.decode(Payload.self, forKey: .value))
        case "signalReceived":
            self = .signalReceived(
                name: try c.decode(String.self, forKey: .name), payload: try c.decode(Payload.self, forKey: .payload),
                requestID: try c.decodeIfPresent(String.self, forKey: .requestID))
        case "cancelRequested": self = .cancelRequested(reason: try c.decodeIfPresent(String.self, forKey: .reason))
        case "approvalRequested":
            self = .approvalRequested(seq: try seq(), request: try c.decode(ApprovalRequest.self, forKey: .request))
        case "approvalDecided":
            self = .approvalDecided(seq: try seq(), decision: try c.decode(ApprovalDecision.self, forKey: .decision))
        case "externalSignalRequested":
            self = .externalSignalRequested(
                seq: try seq(), workflowID: try c.decode(String.self, forKey: .workflowID),
                signal: try c.decode(String.self, forKey: .signal),
                payload: try c.decode(Payload.self, forKey: .payload))
        case "externalCancelRequested":
            self = .externalCancelRequested(
                seq: try seq(), workflowID: try c.decode(String.self, forKey: .workflowID),
                reason: try c.decodeIfPresent(String.self, forKey: .reason))
        case "externalRequestDelivered":
            self = .externalRequestDelivered(seq: try seq(), runID: try c.decode(String.self, forKey: .runID))
        case "externalRequestFailed":
            self = .externalRequestFailed(seq: try seq(), failure: try c.decode(ErrorInfo.self, forKey: .failure))
        case "childWorkflowRequested":
            self = .childWorkflowRequested(
                seq: try seq(), workflowType: try c.decode(String.self, forKey: .workflowType),
                workflowID: try c.decode(String.self, forKey: .workflowID),
                input: try c.decode(Payload.self, forKey: .input),
                options: try c.decodeIfPresent(ChildWorkflowOptions.self, forKey: .options) ?? ChildWorkflowOptions())
        case "childWorkflowStarted":
            self = .childWorkflowStarted(seq: try seq(), runID: try c.decode(String.self, forKey: .runID))
        case "childWorkflowStartFailed":
            self = .childWorkflowStartFailed(seq: try seq(), failure: try c.decode(ErrorInfo.self, forKey: .failure))
        case "childWorkflowClosed":
            self = .childWorkflowClosed(
                seq: try seq(), runID: try c.decode(String.self, forKey: .runID),
                status: try c.decode(RunStatus.self, forKey: .status),
                result: try c.decodeIfPresent(Payload.self, forKey: .result),
                failure: try c.decodeIfPresent(ErrorInfo.self, forKey: .failure))
        case "stageChanged": self = .stageChanged(seq: try seq(), stage: try c.decode(String.self, forKey: .stage))
        case "searchAttributesUpserted":
            self = .searchAttributesUpserted(
                seq: try seq(), attributes: try c.decode([String: SearchAttributeValue].self, forKey: .attributes))
        case "compensationStarted":
            self = .compensationStarted(seq: try seq(), cause: try c.decode(ErrorInfo.self, forKey: .cause))
        case "compensationFailed":
            self = .compensationFailed(
                seq: try seq(), activity: try c.decode(String.self, forKey: .activity),
                failure: try c.decode(ErrorInfo.self, forKey: .failure))
        case "compensationRetryRequested":
            self = .compensationRetryRequested(requestedBy: try c.decodeIfPresent(String.self, forKey: .requestedBy))
        case "workflowCompensated": self = .workflowCompensated(cause: try c.decode(ErrorInfo.self, forKey: .cause))
        case "workflowCompleted": self = .workflowCompleted(result: try c.decode(Payload.self, forKey: .result))
        case "workflowFailed": self = .workflowFailed(failure: try c.decode(ErrorInfo.self, forKey: .failure))
        case "workflowCancelled": self = .workflowCancelled(reason: try c.decodeIfPresent(String.self, forKey: .reason))
        case "workflowTerminated": self = .workflowTerminated(reason: try c.decode(String.self, forKey: .reason))
        case "workflowContinuedAsNew":
            self = .workflowContinuedAsNew(
                input: try c.decode(Payload.self, forKey: .input), runID: try c.decode(String.self, forKey: .runID),
                signals: try c.decodeIfPresent([CarriedSignal].self, forKey: .signals) ?? [])
        default:
            throw DecodingError.dataCorruptedError(
                forKey: .type, in: c, debugDescription: "unknown event type '\(type)'")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(name, forKey: .type)
        if let seq { try c.encode(seq, forKey: .seq) }
        switch self {
        case .workflowStarted(let workflowType, let workflowID, let input, let parent):
            try c.encode(workflowType, forKey: .workflowType)
            try c.encode(workflowID, forKey: .workflowID)
            try c.encode(input, forKey: .input)
            try c.encodeIfPresent(parent, forKey: .parent)
        case .activityScheduled(_, let activity, let input, let idempotencyKey, let options):
            try c.encode(activity, forKey: .activity)
            try c.encode(input, forKey: .input)
            try c.encode(idempotencyKey, forKey: .idempotencyKey)
            if options != ActivityOptions() { try c.encode(options, forKey: .options) }
        case .activityCompleted(_, let result, let attempt):
            try c.encode(result, forKey: .result)
            try c.encode(attempt, forKey: .attempt)
        case .activityFailed(_, let failure, let attempts):
            try c.encode(failure, forKey: .failure)
            try c.encode(attempts, forKey: .attempts)
        case .timerStarted(_, let fireAt): try c.encode(fireAt, forKey: .fireAt)
        case .timerFired, .timerCancelled, .activityCancelRequested, .activityCancelled: break
        case .markerRecorded(_, let name, let value):
            try c.encode(name, forKey: .name)
            try c.encode(value, forKey: .value)
        case .signalReceived(let name, let payload, let requestID):
            try c.encode(name, forKey: .name)
            try c.encode(payload, forKey: .payload)
            try c.encodeIfPresent(requestID, forKey: .requestID)
        case .cancelRequested(let reason), .workflowCancelled(let reason):
            try c.encodeIfPresent(reason, forKey: .reason)
        case .approvalRequested(_, let request): try c.encode(request, forKey: .request)
        case .approvalDecided(_, let decision): try c.encode(decision, forKey: .decision)
        case .externalSignalRequested(_, let workflowID, let signal, let payload):
            try c.encode(workflowID, forKey: .workflowID)
            try c.encode(signal, forKey: .signal)
            try c.encode(payload, forKey: .payload)
        case .externalCancelRequested(_, let workflowID, let reason):
            try c.encode(workflowID, forKey: .workflowID)
            try c.encodeIfPresent(reason, forKey: .reason)
        case .externalRequestDelivered(_, let runID): try c.encode(runID, forKey: .runID)
        case .externalRequestFailed(_, let failure), .childWorkflowStartFailed(_, let failure):
            try c.encode(failure, forKey: .failure)
        case .childWorkflowRequested(_, let workflowType, let workflowID, let input, let options):
            try c.encode(workflowType, forKey: .workflowType)
            try c.encode(workflowID, forKey: .workflowID)
            try c.encode(input, forKey: .input)
            if options != ChildWorkflowOptions() { try c.encode(options, forKey: .options) }
        case .childWorkflowStarted(_, let runID): try c.encode(runID, forKey: .runID)
        case .stageChanged(_, let stage): try c.encode(stage, forKey: .stage)
        case .searchAttributesUpserted(_, let attributes): try c.encode(attributes, forKey: .attributes)
        case .childWorkflowClosed(_, let runID, let status, let result, let failure):
            try c.encode(runID, forKey: .runID)
            try c.encode(status, forKey: .status)
            try c.encodeIfPresent(result, forKey: .result)
            try c.encodeIfPresent(failure, forKey: .failure)
        case .compensationStarted(_, let cause), .workflowCompensated(let cause): try c.encode(cause, forKey: .cause)
        case .compensationFailed(_, let activity, let failure):
            try c.encode(activity, forKey: .activity)
            try c.encode(failure, forKey: .failure)
        case .compensationRetryRequested(let requestedBy): try c.encodeIfPresent(requestedBy, forKey: .requestedBy)
        case .workflowCompleted(let result): try c.encode(result, forKey: .result)
        case .workflowFailed(let failure): try c.encode(failure, forKey: .failure)
        case .workflowTerminated(let reason): try c.encode(reason, forKey: .reason)
        case .workflowContinuedAsNew(let input, let runID, let signals):
            try c.encode(input, forKey: .input)
            try c.encode(runID, forKey: .runID)
            if !signals.isEmpty { try c.encode(signals, forKey: .signals) }
        }
    }
}

/// Options are stored compactly: durations in seconds, defaults left out. Stored durations are
/// clamped when read (``Duration/saturating(seconds:)``): a row never traps a worker.
extension RetryPolicy: Codable {
    private enum Key: String, CodingKey {
        case initialInterval, backoffCoefficient, maximumInterval, maximumAttempts, nonRetryableErrorTypes
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        self.init(
            initialInterval: .saturating(seconds: try c.decodeIfPresent(Double.self, forKey: .initialInterval) ?? 1),
            backoffCoefficient: try c.decodeIfPresent(Double.self, forKey: .backoffCoefficient) ?? 2,
            maximumInterval: try c.decodeIfPresent(Double.self, forKey: .maximumInterval).map {
                .saturating(seconds: $0)
            },
            maximumAttempts: try c.decodeIfPresent(Int.self, forKey: .maximumAttempts),
            nonRetryableErrorTypes: try c.decodeIfPresent([String].self, forKey: .nonRetryableErrorTypes) ?? [])
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(initialInterval.seconds, forKey: .initialInterval)
        try c.encode(backoffCoefficient, forKey: .backoffCoefficient)
        try c.encodeIfPresent(maximumInterval?.seconds, forKey: .maximumInterval)
        try c.encodeIfPresent(maximumAttempts, forKey: .maximumAttempts)
        if !nonRetryableErrorTypes.isEmpty { try c.encode(nonRetryableErrorTypes, forKey: .nonRetryableErrorTypes) }
    }
}

extension ActivityOptions: Codable {
    private enum Key: String, CodingKey {
        case retryPolicy, startToCloseTimeout, scheduleToCloseTimeout, heartbeatTimeout, taskQueue, idempotencyKey,
            cancellationType
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: Key.self)
        func duration(_ key: Key) throws -> Duration? {
            try c.decodeIfPresent(Double.self, forKey: key).map { .saturating(seconds: $0) }
        }
        self.init(
            retryPolicy: try c.decodeIfPresent(RetryPolicy.self, forKey: .retryPolicy) ?? RetryPolicy(),
            startToCloseTimeout: try duration(.startToCloseTimeout),
            scheduleToCloseTimeout: try duration(.scheduleToCloseTimeout),
            heartbeatTimeout: try duration(.heartbeatTimeout),
            taskQueue: try c.decodeIfPresent(String.self, forKey: .taskQueue),
            idempotencyKey: try c.decodeIfPresent(String.self, forKey: .idempotencyKey),
            cancellationType: try c.decodeIfPresent(ActivityCancellationType.self, forKey: .cancellationType)
                ?? .tryCancel)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: Key.self)
        if retryPolicy != RetryPolicy() { try c.encode(retryPolicy, forKey: .retryPolicy) }
        try c.encodeIfPresent(startToCloseTimeout?.seconds, forKey: .startToCloseTimeout)
        try c.encodeIfPresent(scheduleToCloseTimeout?.seconds, forKey: .scheduleToCloseTimeout)
        try c.encodeIfPresent(heartbeatTimeout?.seconds, forKey: .heartbeatTimeout)
        try c.encodeIfPresent(taskQueue, forKey: .taskQueue)
        try c.encodeIfPresent(idempotencyKey, forKey: .idempotencyKey)
        if cancellationType != .tryCancel { try c.encode(cancellationType, forKey: .cancellationType) }
    }
}
